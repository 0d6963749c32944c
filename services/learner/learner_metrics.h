// The learner's Prometheus metrics, created once at start-up: every series exists (at 0) before its
// first event, so a short job's rate() panels are not empty, and the handlers never look a metric up
// by name.
#pragma once

#include <array>
#include <string>
#include <utility>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>

#include "common/obs/metrics.h"
#include "common/train/trainer.h"

namespace r1r::learner {

class LearnerMetrics {
 public:
  explicit LearnerMetrics(obs::Metrics& metrics);

  // One SFT or RL step ("sft" | "rl"), with the processed-image cache's state after it.
  void RecordStep(const std::string& phase, const train::StepResult& r, int64_t image_cache_bytes,
                  int64_t image_cache_evictions);

  prometheus::Gauge& policy_version;           // r1r_learner_policy_version
  prometheus::Gauge& parameters;               // r1r_learner_parameters
  prometheus::Counter& truncated_targets;      // r1r_learner_truncated_targets_total
  prometheus::Counter& stale_trajectories;     // r1r_learner_stale_trajectories_total
  prometheus::Histogram& checkpoint_seconds;   // r1r_learner_checkpoint_seconds
  prometheus::Counter& checkpoints_pruned;     // r1r_learner_checkpoints_pruned_total
  prometheus::Histogram& weight_sync_seconds;  // r1r_learner_weight_sync_seconds
  prometheus::Counter& weight_sync_bytes;      // r1r_learner_weight_sync_bytes_total

 private:
  // The series of one phase (label phase="sft" | "rl").
  struct Phase {
    Phase(obs::Metrics& m, const std::string& phase);
    prometheus::Histogram& step_seconds;
    std::array<prometheus::Histogram*, 3> part_seconds;  // forward, backward, optimizer
    prometheus::Gauge& loss;
    prometheus::Gauge& grad_norm;
    prometheus::Gauge& learning_rate;
    prometheus::Gauge& tokens_per_second;
    prometheus::Counter& steps;
    prometheus::Counter& optimizer_steps;
    prometheus::Counter& skipped_steps;
  };
  Phase sft_;
  Phase rl_;
  prometheus::Gauge& image_cache_bytes_;
  prometheus::Gauge& image_cache_evictions_;
  std::vector<std::pair<std::string, prometheus::Gauge*>> rl_gauges_;  // StepResult.metrics key -> gauge
  // r1r_rl_kl is the one series created at its first value: it exists only when rl.kl_coef > 0 (a
  // reference model is loaded), and a 0 from start-up would read as a measured KL of zero.
  obs::Metrics& metrics_;
  prometheus::Gauge* kl_ = nullptr;
};

}  // namespace r1r::learner
