// A consistency referee: for each policy response, does the reasoning agree with the answer?
// Backends: "rule" (deterministic, tests and the CPU demo), "openai" (an OpenAI-compatible chat
// endpoint such as vLLM serving Qwen2.5-VL-7B), "model" (a Qwen2.5-VL in LibTorch).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <absl/status/statusor.h>

#include "common/reward/rewards.h"

namespace r1r::judge {

struct Verdict {
  reward::Consistency consistency = reward::Consistency::kUnknown;
  std::string raw_reply;   // the last reply read (empty for the rule backend)
  int attempts = 0;        // replies requested
};

class RefereeBackend {
 public:
  virtual ~RefereeBackend() = default;
  virtual std::string name() const = 0;
  // One verdict per response, same order. An error means the referee could not be asked at all
  // (unreachable, timed out after retries); unparsable replies are verdicts of kUnknown instead.
  virtual absl::StatusOr<std::vector<Verdict>> Assess(const std::vector<std::string>& responses) = 0;
};

std::unique_ptr<RefereeBackend> MakeRuleBackend();

}  // namespace r1r::judge
