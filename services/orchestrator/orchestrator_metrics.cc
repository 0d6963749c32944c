#include "services/orchestrator/orchestrator_metrics.h"

namespace r1r::orchestrator {
namespace {

prometheus::Family<prometheus::Gauge>& GaugeFamily(prometheus::Registry& registry, const std::string& name,
                                                  const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry);
}

}  // namespace

const char* OrchestratorMetrics::RlPartName(RlPart part) {
  switch (part) {
    case RlPart::kGeneration:
      return "generation";
    case RlPart::kReward:
      return "reward";
    case RlPart::kLearner:
      return "learner";
    case RlPart::kWeightSync:
      return "weight_sync";
  }
  return "unknown";
}

OrchestratorMetrics::OrchestratorMetrics(obs::Metrics& m)
    : jobs_succeeded(m.Counter("r1r_orchestrator_jobs_total", "Jobs finished, by outcome.", {{"outcome", "succeeded"}})),
      jobs_failed(m.Counter("r1r_orchestrator_jobs_total", "Jobs finished, by outcome.", {{"outcome", "failed"}})),
      job_exceptions(m.Counter("r1r_orchestrator_job_exceptions_total",
                               "Exceptions caught in the job runner (the job failed with the message).")),
      learner_recoveries(
          m.Counter("r1r_orchestrator_learner_recoveries_total", "Phases resumed after a learner restart.")),
      actor_recoveries(
          m.Counter("r1r_orchestrator_actor_recoveries_total", "Generations retried after an actor restart.")),
      quarantined_records(
          m.Counter("r1r_orchestrator_quarantined_records_total",
                    "Corrupt job records moved to <state-dir>/quarantine/ at start instead of being served.")),
      weight_sync_seconds(m.Histogram("r1r_orchestrator_weight_sync_seconds",
                                      "Time for all actors to load new weights in seconds.")),
      rl_step_seconds(m.Histogram("r1r_orchestrator_rl_step_seconds", "Wall time of one RL step in seconds.")),
      policy_version(m.Gauge("r1r_orchestrator_policy_version", "Policy version of the running job.")),
      registry_(m.shared_registry()),
      service_(m.service()),
      phase_seconds_(GaugeFamily(*registry_, "r1r_orchestrator_phase_seconds",
                                 "Wall seconds of the last run of each phase.")),
      eval_accuracy_(GaugeFamily(*registry_, "r1r_eval_accuracy_ratio", "Held-out accuracy by stage.")),
      eval_format_rate_(GaugeFamily(*registry_, "r1r_eval_format_rate_ratio", "Held-out format rate by stage.")) {
  for (RlPart part : kRlParts) {
    rl_part_seconds_[static_cast<size_t>(part)] =
        &m.Histogram("r1r_orchestrator_rl_part_seconds", "RL step time by part in seconds.", {{"part", RlPartName(part)}});
  }
}

prometheus::Gauge& OrchestratorMetrics::PhaseSeconds(v1::Phase phase) {
  return phase_seconds_.Add({{"service", service_}, {"phase", v1::Phase_Name(phase)}});
}

prometheus::Gauge& OrchestratorMetrics::EvalAccuracy(const std::string& stage) {
  return eval_accuracy_.Add({{"service", service_}, {"stage", stage}});
}

prometheus::Gauge& OrchestratorMetrics::EvalFormatRate(const std::string& stage) {
  return eval_format_rate_.Add({{"service", service_}, {"stage", stage}});
}

}  // namespace r1r::orchestrator
