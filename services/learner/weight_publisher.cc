#include "services/learner/weight_publisher.h"

#include <chrono>

#include <absl/strings/numbers.h>
#include <absl/strings/str_cat.h>

#include "common/dist/sync_flags.h"
#include "common/model/model.h"
#include "common/model/weights.h"
#include "common/obs/log.h"

namespace r1r::learner {

absl::StatusOr<std::optional<dist::SyncGroupOptions>> ParseWeightSyncFlags(const config::Flags& f) {
  return dist::SyncGroupOptionsFromFlags(f, "cuda");  // the learner sends from its weights' device
}

WeightPublisher::Metrics::Metrics(obs::Metrics& m)
    : snapshot_seconds(m.Histogram("r1r_learner_weight_snapshot_seconds",
                                   "Time a step spends copying its weights for the sync group in seconds.")),
      broadcast_seconds(m.Histogram("r1r_learner_weight_broadcast_seconds",
                                    "Time to form the sync group if needed and broadcast one version in seconds.")),
      broadcast_bytes(m.Counter("r1r_learner_weight_broadcast_bytes_total",
                                "Weight bytes broadcast to actors (per receiving actor).")),
      broadcast_failures(m.Counter("r1r_learner_weight_broadcast_failures_total",
                                   "Syncs that failed (an actor did not join in time or left mid-way).")),
      group_members(m.Gauge("r1r_learner_weight_sync_group_members", "Actors in the weight sync group.")),
      broadcast_version(m.Gauge("r1r_learner_weight_broadcast_version",
                                "Policy version last broadcast (-1 = none).")) {
  broadcast_version.Set(-1);
}

WeightPublisher::WeightPublisher(obs::Metrics& metrics) : metrics_(metrics) {}

WeightPublisher::~WeightPublisher() = default;

absl::StatusOr<std::unique_ptr<WeightPublisher>> WeightPublisher::Start(const dist::SyncGroupOptions& options,
                                                                        obs::Metrics& metrics) {
  std::unique_ptr<WeightPublisher> p(new WeightPublisher(metrics));
  Metrics* m = &p->metrics_;
  auto leader = dist::SyncLeader::Start(options, [m](const dist::SyncResult& r) {
    m->group_members.Set(r.members);
    if (!r.status.ok()) {
      m->broadcast_failures.Increment();
      spdlog::warn("weight broadcast version={} generation={} failed: {}", r.version, r.generation, r.status.message());
      return;
    }
    if (r.members == 0) return;  // nobody to send to: not a sync
    m->broadcast_seconds.Observe(r.seconds);
    m->broadcast_bytes.Increment(static_cast<double>(r.bytes_sent));
    m->broadcast_version.Set(static_cast<double>(r.version));
    spdlog::info("weight broadcast version={} generation={} actors={} bytes={} seconds={:.3f}", r.version,
                 r.generation, r.members, r.bytes_sent, r.seconds);
  });
  if (!leader.ok()) return leader.status();
  p->leader_ = std::move(*leader);
  p->address_ = absl::StrCat(options.store_host, ":", p->leader_->port());
  spdlog::info("weight sync group: store on port {}, backend {}, bucket {} MiB", p->leader_->port(),
               options.backend == dist::Backend::kNccl ? "nccl" : "gloo", options.bucket_bytes >> 20);
  return p;
}

absl::Status WeightPublisher::Publish(model::Qwen2_5_VL& model, int64_t version, int64_t serial) {
  const auto start = std::chrono::steady_clock::now();
  dist::NamedTensors tensors;
  for (auto& [name, t] : model::ExportWeights(model)) tensors.emplace_back(name, t);  // name order, as streamed
  absl::Status s = leader_->Publish(tensors, version, serial);
  metrics_.snapshot_seconds.Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return s;
}

}  // namespace r1r::learner
