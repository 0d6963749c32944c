// What the phases of one job share: the spec, its work dir, the cluster, the prepared data, the policy
// version the actors should hold, and the job record with its progress. JobRunner builds one per job
// run; the phase units (sft_phase, rl_phase, eval_phase, recovery) take it by reference.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include "common/config/job_spec.h"
#include "common/data/prepare.h"
#include "common/jobs/job_store.h"
#include "services/orchestrator/cluster.h"
#include "services/orchestrator/orchestrator_metrics.h"

namespace r1r::orchestrator {

struct JobContext {
  JobContext(jobs::JobStore* store, OrchestratorMetrics* metrics, v1::Job job, config::JobSpec spec,
             std::unique_ptr<Cluster> cluster, const std::atomic<bool>* stopping);

  // Applies `fn` to `phase`'s progress in the stored record (which also takes `version`) with the
  // event `msg`, and keeps the updated record in `job`.
  absl::Status UpdatePhase(v1::Phase phase, const std::function<void(v1::PhaseProgress&)>& fn, const std::string& msg);
  // The current phase's step, total, wall seconds (earlier runs included) and metrics.
  absl::Status Progress(int64_t step, int64_t total, const std::map<std::string, double>& metrics,
                        const std::string& msg);
  // Aborted while the orchestrator stops (the job stays RUNNING on disk and resumes after the restart),
  // Cancelled once CancelJob marked the stored job.
  absl::Status CheckCancelled();
  v1::JobState PhaseState(v1::Phase phase) const;
  // Init on the learner for `phase` ("sft" or "rl"), resuming from the job's last checkpoint if any.
  absl::StatusOr<v1::LearnerState> InitLearner(const std::string& phase, int64_t total_steps);
  // The spec's reward weights, for every Score call.
  v1::RewardWeights Weights() const;

  jobs::JobStore* const store;
  OrchestratorMetrics* const metrics;
  v1::Job job;
  const config::JobSpec spec;
  const std::unique_ptr<Cluster> cluster;
  const std::atomic<bool>* const stopping;
  const std::string work_dir;
  const std::string model_dir;  // <work_dir>/model: tokenizer, prompt layout, exported weights
  // The learner accepted this job's Init in this run, and no restart has been seen since.
  bool learner_holds_job = false;
  data::PreparedData data;
  int64_t version = 0;  // the policy version the actors should hold
  v1::Phase current_phase = v1::PHASE_UNSPECIFIED;
  std::chrono::steady_clock::time_point phase_start;
  double phase_prior_seconds = 0;  // wall time of earlier runs of the current phase (before a restart)
};

}  // namespace r1r::orchestrator
