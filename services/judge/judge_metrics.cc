#include "services/judge/judge_metrics.h"

namespace r1r::judge {
namespace {

constexpr char kVerdictsName[] = "r1r_judge_verdicts_total";
constexpr char kVerdictsHelp[] = "Referee verdicts by outcome.";

}  // namespace

JudgeMetrics::JudgeMetrics(obs::Metrics& m)
    : rejected_requests(m.Counter("r1r_judge_rejected_requests_total", "Judge requests rejected by validation.")),
      backend_errors(m.Counter("r1r_judge_backend_errors_total", "Batches the referee backend could not answer.")),
      items(m.Counter("r1r_judge_items_total", "Responses judged.")),
      batch_seconds(m.Histogram("r1r_judge_batch_seconds", "Time to judge one batch in seconds.")),
      consistent(m.Counter(kVerdictsName, kVerdictsHelp, {{"verdict", "consistent"}})),
      inconsistent(m.Counter(kVerdictsName, kVerdictsHelp, {{"verdict", "inconsistent"}})),
      unknown(m.Counter(kVerdictsName, kVerdictsHelp, {{"verdict", "unknown"}})) {}

prometheus::Counter& JudgeMetrics::Verdicts(reward::Consistency consistency) {
  switch (consistency) {
    case reward::Consistency::kConsistent: return consistent;
    case reward::Consistency::kInconsistent: return inconsistent;
    default: return unknown;
  }
}

}  // namespace r1r::judge
