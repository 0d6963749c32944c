// The referee behind an OpenAI-compatible chat endpoint (vLLM serving Qwen2.5-VL-7B-Instruct, as in
// the paper): text-only requests at temperature 0.1, up to three replies per response until one
// parses, transport retries with backoff, a shared rate limit, and a few requests in flight.
#pragma once

#include <memory>
#include <string>

#include <absl/time/time.h>

#include "common/judge/referee_backend.h"

namespace r1r::judge {

struct OpenAiOptions {
  std::string base_url;             // e.g. http://vllm:8000/v1
  std::string model;                // empty: the first of GET {base_url}/models
  std::string api_key;              // sent as a bearer token when set
  double temperature = 0.1;
  int max_tokens = 4096;
  absl::Duration timeout = absl::Seconds(60);
  int transport_retries = 3;        // per request, on connect errors, timeouts, 429 and 5xx
  double rate_limit_qps = 0;        // 0 = unlimited
  int concurrency = 8;              // requests in flight
};

std::unique_ptr<RefereeBackend> MakeOpenAiBackend(OpenAiOptions options);

}  // namespace r1r::judge
