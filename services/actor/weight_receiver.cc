#include "services/actor/weight_receiver.h"

#include <absl/strings/numbers.h>
#include <absl/strings/str_cat.h>

#include "common/dist/sync_flags.h"
#include "common/obs/log.h"
#include "r1r/v1/learner.grpc.pb.h"

namespace r1r::actor {

absl::StatusOr<std::optional<WeightSyncFlags>> ParseWeightSyncFlags(const config::Flags& f, const std::string& device) {
  auto group = dist::SyncGroupOptionsFromFlags(f, device);
  if (!group.ok()) return group.status();
  if (!group->has_value()) return std::nullopt;
  WeightSyncFlags out;
  out.group = **group;
  auto wait = f.GetIntInRange("weight-sync-wait-seconds", 1, 3600);
  if (!wait.ok()) return wait.status();
  out.wait = std::chrono::seconds(*wait);
  return out;
}

WeightReceiver::Metrics::Metrics(obs::Metrics& m)
    : receive_seconds(m.Histogram("r1r_actor_weight_broadcast_seconds",
                                  "Time from a broadcast's announcement to its weights verified in seconds.")),
      check_seconds(m.Histogram("r1r_actor_weight_broadcast_check_seconds",
                                "Time the receiving thread spent on the CRC32C and finite checks of one broadcast, "
                                "overlapped with receiving, in seconds.")),
      receive_bytes(m.Counter("r1r_actor_weight_broadcast_bytes_total", "Weight bytes received by broadcast.")),
      fallbacks(m.Counter("r1r_actor_weight_broadcast_fallbacks_total",
                          "LoadWeights calls that found no broadcast version in time and pulled the stream.")),
      group_exits(m.Counter("r1r_actor_weight_sync_group_exits_total",
                            "Times this actor left the weight sync group (ended, broke, or failed to form).")),
      in_group(m.Gauge("r1r_actor_weight_sync_group_member", "1 while the actor is in the weight sync group.")) {}

WeightReceiver::WeightReceiver(const WeightSyncFlags& flags, obs::Metrics& metrics)
    : wait_(flags.wait), metrics_(metrics) {}

WeightReceiver::~WeightReceiver() = default;

absl::StatusOr<std::unique_ptr<WeightReceiver>> WeightReceiver::Start(const WeightSyncFlags& flags,
                                                                      const std::string& actor_id,
                                                                      obs::Metrics& metrics) {
  std::unique_ptr<WeightReceiver> r(new WeightReceiver(flags, metrics));
  Metrics* m = &r->metrics_;
  dist::SyncMember::Events events;
  events.on_received = [m](const dist::WeightSnapshot& s, double seconds, double check_seconds) {
    m->in_group.Set(1);
    m->receive_seconds.Observe(seconds);
    m->check_seconds.Observe(check_seconds);
    m->receive_bytes.Increment(static_cast<double>(s.tensor_bytes()));
    spdlog::info("weight broadcast received version={} serial={} bytes={} seconds={:.3f} check_seconds={:.3f}",
                 s.version(), s.serial(), s.tensor_bytes(), seconds, check_seconds);
  };
  events.on_left = [m](const absl::Status& why) {
    m->in_group.Set(0);
    m->group_exits.Increment();
    spdlog::warn("weight sync group left: {}", why.message());
  };
  auto member = dist::SyncMember::Start(flags.group, actor_id, std::move(events));
  if (!member.ok()) return member.status();
  r->member_ = std::move(*member);
  spdlog::info("weight sync group: joining {}:{} as {}", flags.group.store_host, flags.group.store_port, actor_id);
  return r;
}

absl::StatusOr<BroadcastWeights> WeightReceiver::Take(int64_t serial, int64_t min_version) {
  metrics_.in_group.Set(member_->in_group() ? 1 : 0);
  auto snapshot = member_->WaitFor(serial, wait_);  // returns at once outside the group
  if (snapshot.ok() && (*snapshot)->version() < min_version) {
    snapshot = absl::FailedPreconditionError(absl::StrCat("weight broadcast: serial ", (*snapshot)->serial(),
                                                          " is policy version ", (*snapshot)->version(), ", below ",
                                                          min_version));
  }
  if (!snapshot.ok()) {
    metrics_.fallbacks.Increment();
    return snapshot.status();
  }
  BroadcastWeights out;
  out.version = (*snapshot)->version();
  out.bytes = (*snapshot)->tensor_bytes();
  for (auto& [name, t] : (*snapshot)->Tensors()) out.tensors.emplace(name, t);
  out.keep = *snapshot;
  return out;
}

absl::StatusOr<BroadcastWeights> WeightReceiver::TakeCurrent(const rpc::ClientOptions& learner, int64_t min_version) {
  auto channel = rpc::MakeChannel(learner);
  if (!channel.ok()) return channel.status();
  grpc::ClientContext ctx;
  rpc::PrepareContext(ctx, learner);
  v1::LearnerState state;
  grpc::Status s = v1::Learner::NewStub(*channel)->GetState(&ctx, v1::GetStateRequest(), &state);
  if (!s.ok()) {
    metrics_.fallbacks.Increment();
    return absl::UnavailableError(absl::StrCat("GetState from ", learner.target, ": ", s.error_message()));
  }
  if (state.weight_sync_store().empty()) {
    metrics_.fallbacks.Increment();
    return absl::FailedPreconditionError(absl::StrCat("learner ", learner.target, " runs no weight sync group"));
  }
  return Take(state.weights_serial(), min_version);
}

}  // namespace r1r::actor
