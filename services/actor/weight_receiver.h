// The actor's end of the weight sync group (common/dist/sync_group.h): a thread that stays in the
// learner's group and receives each broadcast version, verified against its CRC32C and checked for NaN
// and infinite weights while it arrives (so nothing reads the model twice). LoadWeights takes
// the broadcast weights when they arrive in time and falls back to the gRPC stream otherwise (not in
// the group yet, just restarted, the broadcast failed). Off unless --weight-sync-store is given.
#pragma once

#include <chrono>
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
#include "common/model/safetensors.h"
#include "common/obs/metrics.h"
#include "common/rpc/client.h"

namespace r1r::actor {

struct WeightSyncFlags {
  dist::SyncGroupOptions group;
  std::chrono::milliseconds wait{std::chrono::seconds(60)};
};
// nullopt when --weight-sync-store is empty; errors name the flag. `device` is the actor's --device.
absl::StatusOr<std::optional<WeightSyncFlags>> ParseWeightSyncFlags(const config::Flags& flags,
                                                                    const std::string& device);

// Weights received by broadcast, CRC32C-verified and finite: views into the received buffer, which
// `keep` holds alive.
struct BroadcastWeights {
  int64_t version = -1;
  int64_t bytes = 0;  // tensor bytes
  model::TensorMap tensors;
  std::shared_ptr<const void> keep;
};

class WeightReceiver {
 public:
  // Starts receiving as `actor_id` (unique per actor) and registers the metrics (at 0).
  static absl::StatusOr<std::unique_ptr<WeightReceiver>> Start(const WeightSyncFlags& flags,
                                                               const std::string& actor_id, obs::Metrics& metrics);
  ~WeightReceiver();

  // Broadcast weights at least as new as the learner's `serial` (LearnerState.weights_serial) and of a
  // policy version >= min_version: at once when already here, after up to the wait while this actor
  // is in the group (not while it waits to be admitted: that broadcast may have started without it),
  // else NOT_FOUND (and the fallback counted): pull the stream.
  absl::StatusOr<BroadcastWeights> Take(int64_t serial, int64_t min_version);
  // Take() for the weights the learner at `learner.target` holds now (its GetState says which);
  // FAILED_PRECONDITION when that learner runs no sync group (another rank, or the flag is off).
  absl::StatusOr<BroadcastWeights> TakeCurrent(const rpc::ClientOptions& learner, int64_t min_version);
  // Frees the received buffer once its weights are loaded.
  void Release() { member_->Release(); }

 private:
  struct Metrics {
    explicit Metrics(obs::Metrics& m);
    prometheus::Histogram& receive_seconds;  // r1r_actor_weight_broadcast_seconds (announced to verified)
    prometheus::Histogram& check_seconds;    // r1r_actor_weight_broadcast_check_seconds (CRC32C + finite)
    prometheus::Counter& receive_bytes;      // r1r_actor_weight_broadcast_bytes_total
    prometheus::Counter& fallbacks;          // r1r_actor_weight_broadcast_fallbacks_total (loads over the stream)
    prometheus::Counter& group_exits;        // r1r_actor_weight_sync_group_exits_total
    prometheus::Gauge& in_group;             // r1r_actor_weight_sync_group_member (1 in the group, 0 not)
  };
  WeightReceiver(const WeightSyncFlags& flags, obs::Metrics& metrics);

  const std::chrono::milliseconds wait_;
  Metrics metrics_;
  std::unique_ptr<dist::SyncMember> member_;
};

}  // namespace r1r::actor
