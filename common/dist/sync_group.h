// Weight sync over collectives: learner rank 0 (the leader) and the actors (members) form a c10d
// group — Gloo on CPU, NCCL on GPU — and every new policy version goes out as a bucketed broadcast of
// a WeightSnapshot, tagged with its policy version, weights serial and CRC32C, which members verify
// (with the finite-weights check, bucket by bucket as the buffer arrives) before handing it on: a
// corrupt or non-finite broadcast is dropped (the member leaves the group and pulls the stream).
//
// How the group forms: the leader hosts a TCPStore (the address it publishes); a member takes a ticket
// there and waits to be assigned a rank. Before each broadcast the leader admits the tickets taken
// since the last one: if there are any, or the last group broke, it announces "reform" to the current
// group and forms generation g+1 on its own key prefix of the store. A ticket from a member id already
// in the group replaces the old one (a restarted actor). Forming waits at most `timeout` for every
// member; a member that does not come (down, slow) fails that generation on every rank, the leader
// drops all members, and the live ones take new tickets and join the next sync: nobody waits on it
// past the timeout twice. A broadcast that fails (a member died mid-way) breaks the group the same
// way. Members that miss a version catch up over the learner's gRPC weight stream.
//
// The leader never blocks its caller on the network: Publish copies the weights into a snapshot (the
// only pause) and a background thread broadcasts it. A newer version replaces a queued one not yet
// sent, so the leader holds at most two snapshot buffers (in flight or kept for reuse, and queued):
// up to 2x the model's bytes on the model's device. Members receive in their own thread and keep the
// newest verified snapshot (1x the model; its buffer is reused for the next one once released).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include "common/dist/process_group.h"
#include "common/dist/weight_snapshot.h"

namespace r1r::dist {

struct SyncGroupOptions {
  Backend backend = Backend::kGloo;
  // The leader's TCPStore. The leader listens on store_port on every interface (0: a free port, see
  // SyncLeader::port()); members connect to store_host:store_port.
  std::string store_host = "127.0.0.1";
  int store_port = 29600;
  // How long forming a group and each collective wait for the slowest member.
  std::chrono::milliseconds timeout{std::chrono::seconds(30)};
  // Bytes per broadcast call: smaller buckets start arriving sooner, larger ones have less overhead.
  int64_t bucket_bytes = int64_t{64} << 20;
  // Where a member receives ("cpu", or "cuda:N" with NCCL). The leader sends from its weights' device.
  std::string device = "cpu";
};
// INVALID_ARGUMENT naming the bad option.
absl::Status Validate(const SyncGroupOptions& options);
// Sets store_host and store_port from "host:port" (port 1..65535); INVALID_ARGUMENT quoting it otherwise.
absl::Status SetStoreAddress(const std::string& host_port, SyncGroupOptions* options);

// One sync as the leader saw it.
struct SyncResult {
  int64_t version = -1;
  int generation = 0;
  int members = 0;          // receivers in the group (0: nobody to send to, nothing sent)
  int64_t bytes_sent = 0;   // buffer bytes broadcast (tensor bytes plus alignment padding)
  double seconds = 0;       // admitting members, forming a group if needed, and broadcasting
  absl::Status status;      // why the sync failed (the group is then dropped)
};

class SyncLeader {
 public:
  // Hosts the store and starts the sending thread. `on_sync` runs on that thread after every sync.
  static absl::StatusOr<std::unique_ptr<SyncLeader>> Start(const SyncGroupOptions& options,
                                                           std::function<void(const SyncResult&)> on_sync = nullptr);
  ~SyncLeader();  // tells the members the group ended and joins the thread

  int port() const { return port_; }
  // Copies `tensors` into a snapshot of policy `version` and weights `serial` (larger than any
  // published before) and queues it. Returns once copied.
  absl::Status Publish(const NamedTensors& tensors, int64_t version, int64_t serial);
  // Waits until nothing is queued or in flight; the last sync's result (for tests and the bench).
  SyncResult WaitIdle();

 private:
  struct Impl;
  explicit SyncLeader(std::unique_ptr<Impl> impl);
  void Run();
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
  std::thread thread_;
};

class SyncMember {
 public:
  // Starts the receiving thread, which connects (retrying while the leader is not up), takes a ticket
  // as `member_id` (unique per actor: a new ticket with the same id replaces the old member) and
  // receives every broadcast. The events (may be null) run on that thread.
  struct Events {
    // After each verified broadcast (CRC32C and finite weights), with the seconds from its
    // announcement to verified and those spent checking (overlapped with receiving).
    std::function<void(const WeightSnapshot&, double seconds, double check_seconds)> on_received;
    // When this member leaves a group (the group ended or broke, or joining failed): why.
    std::function<void(const absl::Status&)> on_left;
  };
  static absl::StatusOr<std::unique_ptr<SyncMember>> Start(const SyncGroupOptions& options, std::string member_id,
                                                           Events events = {});
  ~SyncMember();

  // Whether a group includes this member now (a caller may then wait for the next broadcast).
  bool in_group() const;
  // The serial of the newest verified snapshot received (-1: none yet).
  int64_t latest_serial() const;
  // The newest verified snapshot once its serial is >= min_serial, waiting at most `wait` while this
  // member is in a group (one re-forming counts; a member not admitted yet does not wait, as the
  // broadcast it waits for may have started without it). It stays here for the next caller too.
  // NOT_FOUND when none arrived: not in a group, the group broke, or `wait` passed.
  absl::StatusOr<std::shared_ptr<const WeightSnapshot>> WaitFor(int64_t min_serial, std::chrono::milliseconds wait);
  // Once the taken snapshot's tensors are loaded and dropped: its buffer is kept for the next
  // broadcast of the same size (1x the model, as while it was held) instead of a fresh allocation.
  void Release();

 private:
  struct Impl;
  explicit SyncMember(std::unique_ptr<Impl> impl);
  void Run();
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
};

}  // namespace r1r::dist
