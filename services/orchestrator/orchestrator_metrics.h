// The orchestrator's Prometheus metrics, built once at start-up (as serve's ServeMetrics): every counter
// and step histogram exists at 0 before its first event, and the handlers and phases hold references
// instead of looking series up by name at each call. Holds the registry, so the series outlive the
// process's Server while the job runner stops.
#pragma once

#include <array>
#include <memory>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "common/obs/metrics.h"
#include "r1r/v1/jobs.pb.h"

namespace r1r::orchestrator {

class OrchestratorMetrics {
 public:
  explicit OrchestratorMetrics(obs::Metrics& metrics);

  // The parts of one RL step, in the order of their timings.
  enum class RlPart { kGeneration, kReward, kLearner, kWeightSync };
  static constexpr std::array<RlPart, 4> kRlParts = {RlPart::kGeneration, RlPart::kReward, RlPart::kLearner,
                                                     RlPart::kWeightSync};
  static const char* RlPartName(RlPart part);  // "generation", "reward", "learner", "weight_sync"

  prometheus::Counter& jobs_succeeded;       // r1r_orchestrator_jobs_total{outcome="succeeded"}
  prometheus::Counter& jobs_failed;          // r1r_orchestrator_jobs_total{outcome="failed"}
  prometheus::Counter& job_exceptions;       // r1r_orchestrator_job_exceptions_total
  prometheus::Counter& learner_recoveries;   // r1r_orchestrator_learner_recoveries_total
  prometheus::Counter& actor_recoveries;     // r1r_orchestrator_actor_recoveries_total
  prometheus::Counter& quarantined_records;  // r1r_orchestrator_quarantined_records_total
  prometheus::Histogram& weight_sync_seconds;  // r1r_orchestrator_weight_sync_seconds
  prometheus::Histogram& rl_step_seconds;      // r1r_orchestrator_rl_step_seconds
  prometheus::Gauge& policy_version;           // r1r_orchestrator_policy_version (of the running job)

  // r1r_orchestrator_rl_part_seconds{part}
  prometheus::Histogram& RlPartSeconds(RlPart part) { return *rl_part_seconds_[static_cast<size_t>(part)]; }
  // Gauges that appear once they have a value (a 0 before the first run would read as a measurement):
  // r1r_orchestrator_phase_seconds{phase}, r1r_eval_accuracy_ratio{stage}, r1r_eval_format_rate_ratio{stage}.
  prometheus::Gauge& PhaseSeconds(v1::Phase phase);
  prometheus::Gauge& EvalAccuracy(const std::string& stage);
  prometheus::Gauge& EvalFormatRate(const std::string& stage);

 private:
  std::shared_ptr<prometheus::Registry> registry_;  // keeps every series above alive
  std::string service_;
  std::array<prometheus::Histogram*, kRlParts.size()> rl_part_seconds_{};
  prometheus::Family<prometheus::Gauge>& phase_seconds_;
  prometheus::Family<prometheus::Gauge>& eval_accuracy_;
  prometheus::Family<prometheus::Gauge>& eval_format_rate_;
};

}  // namespace r1r::orchestrator
