// The reward aggregator's Prometheus metrics, registered once at start-up so that every one of them
// exists (at 0) before its first event and no handler looks a metric up by name.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>

#include "common/obs/metrics.h"

namespace r1r::reward {

struct RewardMetrics {
  explicit RewardMetrics(obs::Metrics& metrics);

  prometheus::Counter& trajectories;        // r1r_reward_trajectories_total
  prometheus::Counter& rejected_requests;   // r1r_reward_rejected_requests_total (validation)
  prometheus::Counter& judge_failures;      // r1r_reward_judge_failures_total (batches, after retries)
  prometheus::Histogram& judge_seconds;     // r1r_reward_judge_seconds (per request)
  prometheus::Gauge& mean;                  // r1r_reward_mean (last request)
  prometheus::Gauge& format_rate;           // r1r_reward_format_rate (last request)
  prometheus::Gauge& result_rate;           // r1r_reward_result_rate (last request)
  prometheus::Gauge& consistency_rate;      // r1r_reward_consistency_rate (last request)
};

}  // namespace r1r::reward
