// Runs queued jobs one at a time: data prep -> SFT -> RL -> eval -> publish, driving the learner,
// the actors and the reward aggregator over gRPC. Progress is persisted in the job record after
// every step, so `r1r watch` shows it live and a restarted orchestrator resumes the job from the
// learner's last checkpoint.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <absl/status/status.h>

#include "common/config/job_spec.h"
#include "common/jobs/job_store.h"
#include "services/orchestrator/cluster.h"
#include "services/orchestrator/orchestrator_metrics.h"
#include "services/orchestrator/spec_paths.h"

namespace r1r::orchestrator {

class JobRunner {
 public:
  // A job's spec paths are confined to `roots` again when it starts (see ConfineSpecPaths).
  JobRunner(jobs::JobStore* store, std::optional<ClusterTargets> targets, SpecRoots roots, OrchestratorMetrics* metrics);
  ~JobRunner();
  void Start();
  void Stop();

 private:
  void Loop();

  jobs::JobStore* store_;
  std::optional<ClusterTargets> targets_;
  SpecRoots roots_;
  OrchestratorMetrics* metrics_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace r1r::orchestrator
