// Held-out evaluation: greedy answers scored by the reward service (accuracy, format and consistency
// rates) and, at the end, voting@K with a strict majority (eval::MajorityVote). Each stage is recorded
// once in the EVAL phase's metrics as "<stage>.accuracy" and so on; a resumed job skips stages it has.
#pragma once

#include <string>

#include <absl/status/status.h>

#include "services/orchestrator/job_context.h"

namespace r1r::orchestrator {

// Evaluates the actors' current weights as `stage` ("before_sft", "after_sft", ...) unless recorded.
absl::Status RecordEval(JobContext& ctx, const std::string& stage, bool with_voting);

// The EVAL phase: the final evaluation with voting. A job that trains nothing first has the learner load
// the named model so the actors can pull it.
absl::Status RunEvalPhase(JobContext& ctx);

}  // namespace r1r::orchestrator
