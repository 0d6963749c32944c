// The endpoint's Prometheus metrics. Holds the registry by shared_ptr, so the batcher thread and the
// service can still record while the process's Server (which owns obs::Metrics) is torn down.
#pragma once

#include <memory>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "common/obs/metrics.h"

namespace r1r::serve {

class ServeMetrics {
 public:
  // nullptr when `metrics` is null (tests without a registry).
  static std::shared_ptr<ServeMetrics> From(obs::Metrics* metrics);

  // r1r_serve_requests_total{rpc, outcome}
  void CountRequest(const std::string& rpc, const std::string& outcome);
  // r1r_serve_<rpc>_seconds (compare, rank, reload)
  void ObserveSeconds(const std::string& rpc, double seconds);

  prometheus::Histogram& batch_size;        // r1r_serve_batch_size (sequences per batch)
  prometheus::Histogram& batch_seconds;     // r1r_serve_batch_seconds
  prometheus::Gauge& queue_depth;           // r1r_serve_queue_depth_sequences
  prometheus::Counter& generated_tokens;    // r1r_serve_generated_tokens_total
  prometheus::Gauge& tokens_per_second;     // r1r_serve_tokens_per_second (last batch)
  prometheus::Counter& batch_errors;        // r1r_serve_batch_errors_total
  prometheus::Gauge& policy_version;        // r1r_serve_policy_version
  prometheus::Histogram& reload_seconds;    // r1r_serve_reload_seconds (successful reloads)

 private:
  ServeMetrics(std::shared_ptr<prometheus::Registry> registry, const std::string& service);
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Labels base_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Histogram& compare_seconds_;
  prometheus::Histogram& rank_seconds_;
};

}  // namespace r1r::serve
