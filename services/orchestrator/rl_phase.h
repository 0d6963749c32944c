// The RL phase (StableReinforce). Each step: the actors generate rollouts for a batch of RL prompts,
// the reward service scores them, the learner takes one RL step, and the actors load the new weights.
// With rl.off_policy_steps > 0 the next step's rollouts are generated while the learner trains on this
// step's (one version old). Ends with a checkpoint.
#pragma once

#include <absl/status/status.h>

#include "services/orchestrator/job_context.h"

namespace r1r::orchestrator {

absl::Status RunRlPhase(JobContext& ctx);

}  // namespace r1r::orchestrator
