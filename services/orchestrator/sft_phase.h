// The SFT phase: the cold start on reasoning traces. The learner takes the job (resuming from its last
// checkpoint), the actors load its weights for the "before_sft" evaluation, then epochs of SFT steps over
// the SFT split in a seeded order, a checkpoint, and the "after_sft" evaluation.
#pragma once

#include <absl/status/status.h>

#include "services/orchestrator/job_context.h"

namespace r1r::orchestrator {

absl::Status RunSftPhase(JobContext& ctx);

}  // namespace r1r::orchestrator
