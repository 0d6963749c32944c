#pragma once

#include <string>

#include <absl/status/statusor.h>

namespace r1r::testing {

// A minimal HTTP/1.0 GET against 127.0.0.1:port; returns the body of a 200 response.
absl::StatusOr<std::string> HttpGet(int port, const std::string& path);

}  // namespace r1r::testing
