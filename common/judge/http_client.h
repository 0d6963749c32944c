// A small blocking HTTP client (libcurl) for JSON APIs: POST/GET with a timeout and headers.
#pragma once

#include <string>
#include <vector>

#include <absl/status/statusor.h>
#include <absl/time/time.h>

namespace r1r::judge {

struct HttpResponse {
  long status = 0;
  std::string body;
};

// Transport failures (connect, timeout) are UNAVAILABLE / DEADLINE_EXCEEDED; any HTTP status is
// returned as a response for the caller to judge.
absl::StatusOr<HttpResponse> HttpRequest(const std::string& method, const std::string& url, const std::string& body,
                                         const std::vector<std::string>& headers, absl::Duration timeout);

}  // namespace r1r::judge
