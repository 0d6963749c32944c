// How a running job rides out a peer's restart: a learner that restarted (a crash, a rank lost from its
// group) is given the job again and the phase resumes from the last checkpoint; an actor that restarted
// mid-generation gets the current weights again and the generation is repeated. Each is tried a few
// times and waits a bounded time for the peer to come back.
#pragma once

#include <functional>
#include <vector>

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include "services/orchestrator/job_context.h"

namespace r1r::orchestrator {

// How often one phase may resume after a learner restart, and how long a restart may take.
inline constexpr int kLearnerRecoveries = 3;
// The same for an actor that lost its weights (restarted) in the middle of a generation.
inline constexpr int kActorRecoveries = 3;

// Runs `body` (a phase) and, for SFT, RL and publish, runs it again after each learner restart (up to
// kLearnerRecoveries): they start by initialising the learner from the job's last checkpoint, so a
// rerun resumes where it saved (SFT saves only at its end, so it starts over). A restart is a learner
// that had taken this job in this run and answers without it.
absl::Status RunResumingAfterLearnerRestarts(JobContext& ctx, v1::Phase phase,
                                             const std::function<absl::Status()>& body);

// The learner's state once it answers, waiting up to 5 minutes (e.g. while it restarts).
absl::StatusOr<v1::LearnerState> WaitForLearner(JobContext& ctx);

// Generates with the weights the actors should hold (ctx.version). An actor that restarted holds none:
// when one answers with another version, every actor loads ctx.version again and the call is repeated.
absl::StatusOr<std::vector<v1::Trajectory>> GenerateOnCurrentWeights(JobContext& ctx,
                                                                     const std::vector<v1::Prompt>& prompts,
                                                                     const v1::SamplingParams& sampling);

// Every actor loads ctx.version. An actor that does not answer (restarting) is waited for, up to 2
// minutes.
absl::Status SyncActors(JobContext& ctx);

}  // namespace r1r::orchestrator
