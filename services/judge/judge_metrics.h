// The referee service's Prometheus metrics, registered once at start-up so that every one of them exists
// (at 0) before its first event and no handler looks a metric up by name.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/histogram.h>

#include "common/obs/metrics.h"
#include "common/reward/rewards.h"

namespace r1r::judge {

struct JudgeMetrics {
  explicit JudgeMetrics(obs::Metrics& metrics);

  // r1r_judge_verdicts_total{verdict="consistent"|"inconsistent"|"unknown"}
  prometheus::Counter& Verdicts(reward::Consistency consistency);

  prometheus::Counter& rejected_requests;  // r1r_judge_rejected_requests_total (validation)
  prometheus::Counter& backend_errors;     // r1r_judge_backend_errors_total (batches the backend could not answer)
  prometheus::Counter& items;              // r1r_judge_items_total (responses judged)
  prometheus::Histogram& batch_seconds;    // r1r_judge_batch_seconds
  prometheus::Counter& consistent;    // the three series of r1r_judge_verdicts_total
  prometheus::Counter& inconsistent;
  prometheus::Counter& unknown;
};

}  // namespace r1r::judge
