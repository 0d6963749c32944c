#include "services/orchestrator/job_runner.h"

#include <chrono>
#include <functional>

#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>

#include "common/obs/log.h"
#include "common/rpc/status.h"
#include "services/orchestrator/eval_phase.h"
#include "services/orchestrator/job_context.h"
#include "services/orchestrator/recovery.h"
#include "services/orchestrator/rl_phase.h"
#include "services/orchestrator/sft_phase.h"

namespace r1r::orchestrator {
namespace {

// Runs `body` unless the phase already SUCCEEDED (resume), recording state and wall time.
absl::Status RunPhase(JobContext& ctx, v1::Phase phase, const std::function<absl::Status()>& body) {
  if (ctx.PhaseState(phase) == v1::JOB_STATE_SUCCEEDED && phase != v1::PHASE_DATA_PREP) return absl::OkStatus();
  const auto start = std::chrono::steady_clock::now();
  ctx.current_phase = phase;
  ctx.phase_start = start;
  ctx.phase_prior_seconds = 0;
  for (const auto& p : ctx.job.phases()) {
    if (p.phase() == phase) ctx.phase_prior_seconds = p.wall_seconds();
  }
  const std::string name = v1::Phase_Name(phase).substr(6);
  if (absl::Status s = ctx.UpdatePhase(phase, [](v1::PhaseProgress& p) { p.set_state(v1::JOB_STATE_RUNNING); },
                                       absl::StrCat(name, " started"));
      !s.ok())
    return s;
  absl::Status s = RunResumingAfterLearnerRestarts(ctx, phase, body);
  // A failure while the orchestrator stops (a recovery given up, a call cut short) is the stop: the
  // phase stays RUNNING and resumes after the restart.
  if (!s.ok() && !absl::IsCancelled(s) && ctx.stopping->load()) {
    s = absl::AbortedError(absl::StrCat("orchestrator stopping (", s.message(), ")"));
  }
  const double seconds = rpc::SecondsSince(start);
  ctx.metrics->PhaseSeconds(phase).Set(seconds);
  if (!s.ok()) {
    if (absl::IsAborted(s)) return s;  // stopping: the phase stays RUNNING and resumes
    (void)ctx.UpdatePhase(
        phase,
        [&](v1::PhaseProgress& p) {
          p.set_state(absl::IsCancelled(s) ? v1::JOB_STATE_CANCELLED : v1::JOB_STATE_FAILED);
        },
        absl::StrCat(name, " stopped: ", s.message()));
    return s;
  }
  return ctx.UpdatePhase(phase,
                         [&](v1::PhaseProgress& p) {
                           p.set_state(v1::JOB_STATE_SUCCEEDED);
                           p.set_wall_seconds(ctx.phase_prior_seconds + seconds);
                         },
                         absl::StrFormat("%s done in %.1fs", name, seconds));
}

// Runs again on every start of a job (resume included): the splits are deterministic for a spec.
absl::Status DataPrepPhase(JobContext& ctx) {
  auto data = data::PrepareData(ctx.spec, ctx.work_dir);
  if (!data.ok()) return data.status();
  ctx.data = std::move(*data);
  if (absl::Status s = data::PrepareTokenizer(ctx.spec, ctx.data, ctx.model_dir); !s.ok()) return s;
  if (absl::Status s = data::WritePromptLayout(ctx.spec, ctx.model_dir); !s.ok()) return s;
  return ctx.Progress(1, 1,
                      {{"sft_samples", static_cast<double>(ctx.data.sft.size())},
                       {"rl_samples", static_cast<double>(ctx.data.rl.size())},
                       {"heldout_samples", static_cast<double>(ctx.data.heldout.size())},
                       {"bad_rows", static_cast<double>(ctx.data.bad_rows)}},
                      ctx.data.report);
}

absl::Status PublishPhase(JobContext& ctx) {
  // A learner restarted since training ended (or with the orchestrator) has lost the job: it loads
  // the last checkpoint, which holds the trained weights, before it exports them.
  auto held = WaitForLearner(ctx);
  if (!held.ok()) return held.status();
  if (held->job_id() != ctx.job.id()) {
    auto state = ctx.InitLearner(ctx.spec.rl.enabled ? "rl" : "sft", 0);
    if (!state.ok()) return state.status();
  } else {
    ctx.learner_holds_job = true;  // held since before an orchestrator restart: a crash now is a restart
  }
  auto saved = ctx.cluster->SaveCheckpoint(0, ctx.work_dir + "/published");
  if (!saved.ok()) return saved.status();
  return ctx.Progress(1, 1, {{"policy_version", static_cast<double>(ctx.version)}},
                      absl::StrCat("published ", ctx.work_dir, "/published"));
}

// data prep -> SFT -> RL -> eval -> publish; a phase that already succeeded (resume) is skipped.
absl::Status ExecuteJob(JobContext& ctx) {
  if (absl::Status s = RunPhase(ctx, v1::PHASE_DATA_PREP, [&] { return DataPrepPhase(ctx); }); !s.ok()) return s;
  if (ctx.spec.sft.enabled) {
    if (absl::Status s = RunPhase(ctx, v1::PHASE_SFT, [&] { return RunSftPhase(ctx); }); !s.ok()) return s;
  }
  if (ctx.spec.rl.enabled) {
    if (absl::Status s = RunPhase(ctx, v1::PHASE_RL, [&] { return RunRlPhase(ctx); }); !s.ok()) return s;
  }
  if (absl::Status s = RunPhase(ctx, v1::PHASE_EVAL, [&] { return RunEvalPhase(ctx); }); !s.ok()) return s;
  return RunPhase(ctx, v1::PHASE_PUBLISH, [&] { return PublishPhase(ctx); });
}

}  // namespace

JobRunner::JobRunner(jobs::JobStore* store, std::optional<ClusterTargets> targets, SpecRoots roots,
                     OrchestratorMetrics* metrics)
    : store_(store), targets_(std::move(targets)), roots_(std::move(roots)), metrics_(metrics) {}

JobRunner::~JobRunner() { Stop(); }

void JobRunner::Start() {
  if (!targets_) {
    spdlog::warn("no --learner/--actors/--reward given: jobs are accepted and stored but not run");
    return;
  }
  thread_ = std::thread([this] { Loop(); });
}

void JobRunner::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void JobRunner::Loop() {
  while (!stop_) {
    auto id = store_->NextQueued();
    if (!id) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    auto job = store_->Update(*id, [](v1::Job& j) { j.set_state(v1::JOB_STATE_RUNNING); }, "job started");
    if (!job.ok()) continue;
    absl::Status s;
    // An exception from a reader or the model (bad data, a bad model file) fails this job with its
    // message instead of ending the process (which would rerun the job, and crash again, on restart).
    try {
      auto spec = config::ParseJobSpec(job->spec_yaml());
      if (!spec.ok()) {
        s = spec.status();
      } else if (s = ConfineSpecPaths(roots_, *spec); !s.ok()) {
        // a path the spec names is no longer allowed, or no longer a regular file
      } else if (auto cluster = Cluster::Connect(*targets_, &stop_); !cluster.ok()) {
        s = cluster.status();
      } else {
        JobContext ctx(store_, metrics_, *job, *spec, std::move(*cluster), &stop_);
        s = ExecuteJob(ctx);
      }
    } catch (const std::exception& e) {
      s = absl::InternalError(absl::StrCat("job runner: unexpected exception: ", e.what()));
      metrics_->job_exceptions.Increment();
    }
    if (absl::IsCancelled(s)) continue;  // CancelJob already set the state
    if (absl::IsAborted(s) && stop_) return;  // resumes after restart
    (void)store_->Update(
        *id,
        [&](v1::Job& j) {
          j.set_state(s.ok() ? v1::JOB_STATE_SUCCEEDED : v1::JOB_STATE_FAILED);
          if (!s.ok()) j.set_error(std::string(s.message()));
        },
        s.ok() ? "job succeeded" : absl::StrCat("job failed: ", s.message()));
    (s.ok() ? metrics_->jobs_succeeded : metrics_->jobs_failed).Increment();
    if (!s.ok()) spdlog::error("job {} failed: {}", *id, s.message());
  }
}

}  // namespace r1r::orchestrator
