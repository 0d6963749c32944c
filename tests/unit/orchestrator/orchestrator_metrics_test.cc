// The orchestrator's metrics exist from start-up: a counter at 0 reads "nothing happened yet" on the
// dashboard, where a series that appears only at its first increment reads "no data", and a rate() over
// a histogram needs a sample before the first event (a short job otherwise leaves its panels empty).
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "common/obs/metrics.h"
#include "services/orchestrator/orchestrator_metrics.h"

namespace r1r::orchestrator {
namespace {

// "<family>{label=value,...}" for every series in the registry, with its value (counters and gauges)
// or sample count (histograms).
std::map<std::string, double> Series(prometheus::Registry& registry) {
  std::map<std::string, double> out;
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    for (const prometheus::ClientMetric& m : family.metric) {
      std::string key = family.name + "{";
      for (const auto& l : m.label) {
        if (l.name != "service") key += l.name + "=" + l.value + ",";
      }
      key += "}";
      out[key] = family.type == prometheus::MetricType::Histogram ? static_cast<double>(m.histogram.sample_count)
                 : family.type == prometheus::MetricType::Counter ? m.counter.value
                                                                  : m.gauge.value;
    }
  }
  return out;
}

TEST(orchestrator, EveryCounterAndStepHistogramExistsAtZeroFromStartUp) {
  obs::Metrics registry("orchestrator");
  OrchestratorMetrics metrics(registry);  // what main() builds before anything else can count
  const std::map<std::string, double> series = Series(registry.registry());
  for (const char* name : {"r1r_orchestrator_jobs_total{outcome=succeeded,}",
                           "r1r_orchestrator_jobs_total{outcome=failed,}",
                           "r1r_orchestrator_job_exceptions_total{}",
                           "r1r_orchestrator_learner_recoveries_total{}",
                           "r1r_orchestrator_actor_recoveries_total{}",
                           "r1r_orchestrator_quarantined_records_total{}",
                           "r1r_orchestrator_policy_version{}",
                           "r1r_orchestrator_weight_sync_seconds{}",
                           "r1r_orchestrator_rl_step_seconds{}",
                           "r1r_orchestrator_rl_part_seconds{part=generation,}",
                           "r1r_orchestrator_rl_part_seconds{part=reward,}",
                           "r1r_orchestrator_rl_part_seconds{part=learner,}",
                           "r1r_orchestrator_rl_part_seconds{part=weight_sync,}"}) {
    ASSERT_EQ(series.count(name), 1u) << name << " is missing at start-up";
    EXPECT_EQ(series.at(name), 0) << name;
  }
  // The by-phase and by-stage gauges appear with their first value, and once.
  EXPECT_EQ(series.count("r1r_eval_accuracy_ratio{stage=final,}"), 0u);
  metrics.EvalAccuracy("final").Set(0.75);
  metrics.EvalAccuracy("final").Set(0.5);
  metrics.PhaseSeconds(v1::PHASE_RL).Set(3);
  const std::map<std::string, double> later = Series(registry.registry());
  EXPECT_EQ(later.at("r1r_eval_accuracy_ratio{stage=final,}"), 0.5);
  EXPECT_EQ(later.at("r1r_orchestrator_phase_seconds{phase=PHASE_RL,}"), 3);
}

}  // namespace
}  // namespace r1r::orchestrator
