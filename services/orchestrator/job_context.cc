#include "services/orchestrator/job_context.h"

#include <filesystem>

#include "common/rpc/status.h"

namespace r1r::orchestrator {
namespace fs = std::filesystem;

JobContext::JobContext(jobs::JobStore* store_in, OrchestratorMetrics* metrics_in, v1::Job job_in, config::JobSpec spec_in,
                       std::unique_ptr<Cluster> cluster_in, const std::atomic<bool>* stopping_in)
    : store(store_in), metrics(metrics_in), job(std::move(job_in)), spec(std::move(spec_in)),
      cluster(std::move(cluster_in)), stopping(stopping_in), work_dir(fs::absolute(job.work_dir()).string()),
      model_dir(work_dir + "/model") {}

absl::Status JobContext::UpdatePhase(v1::Phase phase, const std::function<void(v1::PhaseProgress&)>& fn,
                                     const std::string& msg) {
  auto updated = store->Update(
      job.id(),
      [&](v1::Job& j) {
        for (auto& p : *j.mutable_phases()) {
          if (p.phase() == phase) fn(p);
        }
        j.set_policy_version(version);
      },
      msg, phase);
  if (!updated.ok()) return updated.status();
  job = *updated;
  return absl::OkStatus();
}

absl::Status JobContext::Progress(int64_t step, int64_t total, const std::map<std::string, double>& metrics_in,
                                  const std::string& msg) {
  return UpdatePhase(current_phase,
                     [&](v1::PhaseProgress& p) {
                       p.set_step(step);
                       p.set_total_steps(total);
                       p.set_wall_seconds(phase_prior_seconds + rpc::SecondsSince(phase_start));
                       for (const auto& [k, v] : metrics_in) (*p.mutable_metrics())[k] = v;
                     },
                     msg);
}

absl::Status JobContext::CheckCancelled() {
  if (stopping->load()) return absl::AbortedError("orchestrator stopping");
  auto stored = store->Get(job.id());
  if (stored.ok() && stored->state() == v1::JOB_STATE_CANCELLED) return absl::CancelledError("job cancelled");
  return absl::OkStatus();
}

v1::JobState JobContext::PhaseState(v1::Phase phase) const {
  for (const auto& p : job.phases()) {
    if (p.phase() == phase) return p.state();
  }
  return v1::JOB_STATE_UNSPECIFIED;
}

absl::StatusOr<v1::LearnerState> JobContext::InitLearner(const std::string& phase, int64_t total_steps) {
  v1::InitRequest req;
  req.set_job_id(job.id());
  req.set_spec_yaml(job.spec_yaml());
  req.set_work_dir(work_dir);
  req.set_resume(fs::exists(work_dir + "/checkpoints/LATEST"));
  req.set_phase(phase);
  req.set_total_steps(total_steps);
  auto state = cluster->InitLearner(req);
  if (!state.ok()) return state.status();
  learner_holds_job = true;
  version = state->policy_version();
  return state;
}

v1::RewardWeights JobContext::Weights() const {
  v1::RewardWeights w;
  w.set_use_explicit(true);
  w.set_format_weight(static_cast<float>(spec.rl.format_weight));
  w.set_consistency_weight(static_cast<float>(spec.rl.consistency_weight));
  return w;
}

}  // namespace r1r::orchestrator
