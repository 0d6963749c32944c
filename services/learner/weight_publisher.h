// Learner rank 0's end of the weight sync group (common/dist/sync_group.h): after each step the new
// weights are copied into a snapshot (the step's only pause for the sync) and broadcast to the actors
// by a background thread while the next step runs. Off unless --weight-sync-store is given; the gRPC
// StreamWeights stays for actors outside the group (down, slow, just restarted).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>

#include "common/config/flags.h"
#include "common/dist/sync_group.h"
#include "common/obs/metrics.h"

namespace r1r::model {
class Qwen2_5_VL;
}

namespace r1r::learner {

// nullopt when --weight-sync-store is empty (the sync group is off); errors name the flag.
absl::StatusOr<std::optional<dist::SyncGroupOptions>> ParseWeightSyncFlags(const config::Flags& flags);

class WeightPublisher {
 public:
  // Hosts the group's store on options.store_port and registers the metrics (at 0).
  static absl::StatusOr<std::unique_ptr<WeightPublisher>> Start(const dist::SyncGroupOptions& options,
                                                                obs::Metrics& metrics);
  ~WeightPublisher();

  // Copies `model`'s weights as policy `version` and queues them for the actors; returns once copied.
  // `serial` names these weights (LearnerState.weights_serial): larger than any published before.
  absl::Status Publish(model::Qwen2_5_VL& model, int64_t version, int64_t serial);
  int port() const { return leader_->port(); }
  // host:port actors join at (LearnerState.weight_sync_store).
  const std::string& address() const { return address_; }

 private:
  struct Metrics {
    explicit Metrics(obs::Metrics& m);
    prometheus::Histogram& snapshot_seconds;   // r1r_learner_weight_snapshot_seconds (the step's pause)
    prometheus::Histogram& broadcast_seconds;  // r1r_learner_weight_broadcast_seconds (one sync)
    prometheus::Counter& broadcast_bytes;      // r1r_learner_weight_broadcast_bytes_total (per receiver)
    prometheus::Counter& broadcast_failures;   // r1r_learner_weight_broadcast_failures_total
    prometheus::Gauge& group_members;          // r1r_learner_weight_sync_group_members (actors in the group)
    prometheus::Gauge& broadcast_version;      // r1r_learner_weight_broadcast_version (last version sent)
  };
  explicit WeightPublisher(obs::Metrics& metrics);

  Metrics metrics_;
  std::string address_;
  std::unique_ptr<dist::SyncLeader> leader_;
};

}  // namespace r1r::learner
