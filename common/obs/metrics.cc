#include "common/obs/metrics.h"

#include <exception>

#include <absl/strings/str_cat.h>

#include "common/obs/http_exposer.h"
#include "common/obs/process_collector.h"

namespace r1r::obs {

const prometheus::Histogram::BucketBoundaries& LatencyBucketsSeconds() {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25,
      0.5,  1.0,    2.5,  5.0,  10.0,   30.0, 60.0, 120.0,  300.0};
  return kBuckets;
}

Metrics::Metrics(std::string service)
    : service_(std::move(service)), registry_(std::make_shared<prometheus::Registry>()) {}

Metrics::~Metrics() = default;

absl::Status Metrics::StartExposer(const std::string& listen) {
  auto exposer = HttpExposer::Start(listen);
  if (!exposer.ok()) return exposer.status();
  exposer_ = std::move(*exposer);
  exposer_->Register(registry_);
  exposer_->Register(MakeProcessCollector(service_));
  return absl::OkStatus();
}

int Metrics::port() const {
  if (!exposer_) return 0;
  return exposer_->port();
}

namespace {
prometheus::Labels WithService(const std::string& service, prometheus::Labels labels) {
  labels.emplace("service", service);
  return labels;
}
}  // namespace

// prometheus-cpp returns the existing family when name/help match, so these are idempotent.
prometheus::Counter& Metrics::Counter(const std::string& name, const std::string& help,
                                      const prometheus::Labels& labels) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(*registry_).Add(
      WithService(service_, labels));
}

prometheus::Gauge& Metrics::Gauge(const std::string& name, const std::string& help,
                                  const prometheus::Labels& labels) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(*registry_).Add(
      WithService(service_, labels));
}

prometheus::Histogram& Metrics::Histogram(const std::string& name, const std::string& help,
                                          const prometheus::Labels& labels,
                                          const prometheus::Histogram::BucketBoundaries& buckets) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(*registry_).Add(
      WithService(service_, labels), buckets);
}

}  // namespace r1r::obs
