// The actor's Prometheus metrics, created once at start-up: every series exists before its first
// event (the policy version at -1, counters at 0), and the handlers never look a metric up by name.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>

#include "common/obs/metrics.h"

namespace r1r::actor {

struct ActorMetrics {
  explicit ActorMetrics(obs::Metrics& metrics);

  prometheus::Gauge& policy_version;           // r1r_actor_policy_version (-1 = none)
  prometheus::Histogram& weight_sync_seconds;  // r1r_actor_weight_sync_seconds (pull and load)
  prometheus::Counter& weight_sync_bytes;      // r1r_actor_weight_sync_bytes_total
  prometheus::Counter& weight_sync_failures;   // r1r_actor_weight_sync_failures_total
  prometheus::Gauge& inflight_requests;        // r1r_actor_inflight_requests (GenerateRollouts calls)
  prometheus::Histogram& rollout_seconds;      // r1r_actor_rollout_seconds (one GenerateRollouts call)
  prometheus::Counter& generated_tokens;       // r1r_actor_generated_tokens_total
  prometheus::Counter& trajectories;           // r1r_actor_trajectories_total
  prometheus::Gauge& tokens_per_second;        // r1r_actor_tokens_per_second (last call)
};

}  // namespace r1r::actor
