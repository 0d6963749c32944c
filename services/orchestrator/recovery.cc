#include "services/orchestrator/recovery.h"

#include <absl/algorithm/container.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>
#include <absl/time/clock.h>
#include <absl/time/time.h>

namespace r1r::orchestrator {
namespace {

constexpr absl::Duration kLearnerRestartWait = absl::Minutes(5);
constexpr absl::Duration kActorRestartWait = absl::Minutes(2);

// After a failed call: waits for the learner to answer, and says whether it came back without this job,
// i.e. it restarted. A learner still holding the job failed for another reason, which resuming would
// not mend.
bool LearnerRestarted(JobContext& ctx) {
  auto state = WaitForLearner(ctx);
  return state.ok() && state->job_id() != ctx.job.id();
}

// After a failed generation: waits (up to kActorRestartWait) for every actor to answer, and says
// whether one holds a version other than ctx.version (a restart leaves it none).
bool ActorsLostWeights(JobContext& ctx) {
  const absl::Time deadline = absl::Now() + kActorRestartWait;
  while (!ctx.stopping->load()) {
    auto versions = ctx.cluster->ActorVersions();
    if (versions.ok()) return absl::c_any_of(*versions, [&](int64_t v) { return v != ctx.version; });
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Seconds(2));
  }
  return false;
}

}  // namespace

absl::Status RunResumingAfterLearnerRestarts(JobContext& ctx, v1::Phase phase,
                                             const std::function<absl::Status()>& body) {
  absl::Status s = body();
  const bool resumable = phase == v1::PHASE_SFT || phase == v1::PHASE_RL || phase == v1::PHASE_PUBLISH;
  for (int recovery = 1; resumable && !s.ok() && !absl::IsAborted(s) && !absl::IsCancelled(s) &&
                         ctx.learner_holds_job && recovery <= kLearnerRecoveries && LearnerRestarted(ctx);
       ++recovery) {
    ctx.learner_holds_job = false;
    ctx.metrics->learner_recoveries.Increment();
    const std::string note =
        absl::StrFormat("the learner restarted (%s); resuming %s from the last checkpoint (recovery %d of %d)",
                        s.message(), v1::Phase_Name(phase).substr(6), recovery, kLearnerRecoveries);
    if (absl::Status u = ctx.UpdatePhase(phase, [](v1::PhaseProgress&) {}, note); !u.ok()) return u;
    s = body();
  }
  return s;
}

absl::StatusOr<v1::LearnerState> WaitForLearner(JobContext& ctx) {
  const absl::Time deadline = absl::Now() + kLearnerRestartWait;
  auto state = ctx.cluster->LearnerState();
  while (!state.ok() && absl::Now() < deadline && !ctx.stopping->load()) {
    absl::SleepFor(absl::Seconds(1));
    state = ctx.cluster->LearnerState();
  }
  return state;
}

absl::StatusOr<std::vector<v1::Trajectory>> GenerateOnCurrentWeights(JobContext& ctx,
                                                                     const std::vector<v1::Prompt>& prompts,
                                                                     const v1::SamplingParams& sampling) {
  auto traj = ctx.cluster->Generate(prompts, sampling, ctx.version);
  for (int recovery = 1; !traj.ok() && recovery <= kActorRecoveries && ActorsLostWeights(ctx); ++recovery) {
    const std::string note = absl::StrFormat(
        "an actor lost its weights (%s); loading version %d into every actor again (recovery %d of %d)",
        traj.status().message(), ctx.version, recovery, kActorRecoveries);
    if (absl::Status u = ctx.UpdatePhase(ctx.current_phase, [](v1::PhaseProgress&) {}, note); !u.ok()) return u;
    ctx.metrics->actor_recoveries.Increment();
    if (absl::Status s = SyncActors(ctx); !s.ok()) return s;
    traj = ctx.cluster->Generate(prompts, sampling, ctx.version);
  }
  return traj;
}

absl::Status SyncActors(JobContext& ctx) {
  const absl::Time deadline = absl::Now() + kActorRestartWait;
  auto seconds = ctx.cluster->SyncActors(ctx.version, ctx.model_dir);
  if (!seconds.ok() && absl::IsUnavailable(seconds.status())) {
    const std::string note =
        absl::StrCat("an actor did not take the weights (", seconds.status().message(), "); waiting for it");
    if (absl::Status u = ctx.UpdatePhase(ctx.current_phase, [](v1::PhaseProgress&) {}, note); !u.ok()) return u;
    while (!seconds.ok() && absl::IsUnavailable(seconds.status()) && absl::Now() < deadline &&
           !ctx.stopping->load()) {
      absl::SleepFor(absl::Seconds(2));
      seconds = ctx.cluster->SyncActors(ctx.version, ctx.model_dir);
    }
  }
  if (!seconds.ok()) return seconds.status();
  ctx.metrics->weight_sync_seconds.Observe(*seconds);
  return absl::OkStatus();
}

}  // namespace r1r::orchestrator
