// Prometheus metrics for r1r processes: one registry per process, exposed on --metrics-listen.
// Metric names carry their unit (r1r_learner_step_seconds, r1r_weight_sync_bytes_total, ...).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <absl/status/status.h>
#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace r1r::obs {

class HttpExposer;

// Latency buckets in seconds from 100 µs to 5 min, for RPCs and step phases alike.
const prometheus::Histogram::BucketBoundaries& LatencyBucketsSeconds();

class Metrics {
 public:
  // `service` becomes the constant label service="<name>" on every metric.
  explicit Metrics(std::string service);
  ~Metrics();

  // Serves /metrics on `listen` ("host:port"; port 0 picks a free one). Also registers the
  // process collector (cpu seconds, resident bytes, open fds, start time).
  absl::Status StartExposer(const std::string& listen);
  // The bound port after StartExposer (useful with port 0); 0 if not started.
  int port() const;

  prometheus::Registry& registry() { return *registry_; }
  std::shared_ptr<prometheus::Registry> shared_registry() { return registry_; }
  const std::string& service() const { return service_; }

  prometheus::Counter& Counter(const std::string& name, const std::string& help,
                               const prometheus::Labels& labels = {});
  prometheus::Gauge& Gauge(const std::string& name, const std::string& help,
                           const prometheus::Labels& labels = {});
  prometheus::Histogram& Histogram(const std::string& name, const std::string& help,
                                   const prometheus::Labels& labels = {},
                                   const prometheus::Histogram::BucketBoundaries& buckets =
                                       LatencyBucketsSeconds());

 private:
  std::string service_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<HttpExposer> exposer_;
};

}  // namespace r1r::obs
