#include "common/dist/sync_group.h"

#include <torch/torch.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <algorithm>
#include <cstring>
#include <functional>
#include <utility>
#include <optional>
#include <stdexcept>

#include <absl/strings/numbers.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/str_join.h>
#include <absl/strings/str_split.h>
#include <absl/strings/strip.h>

#include "common/dist/c10d_group.h"

namespace r1r::dist {
namespace {

using Clock = std::chrono::steady_clock;
// How often a waiting member looks for its next key: the latency a broadcast's start can gain.
constexpr auto kPollInterval = std::chrono::milliseconds(5);

// Store keys (see sync_group.h for the protocol).
constexpr char kTicketCounter[] = "join/seq";
std::string TicketKey(int64_t ticket) { return absl::StrCat("join/", ticket); }
std::string AssignKey(int64_t ticket) { return absl::StrCat("assign/", ticket); }
std::string HereKey(int generation, int64_t ticket) { return absl::StrCat("g", generation, "/here/", ticket); }
std::string AnnounceKey(int generation, int64_t seq) { return absl::StrCat("g", generation, "/sync/", seq); }
std::string GroupPrefix(int generation) { return absl::StrCat("g", generation, "/pg"); }

std::vector<uint8_t> ToBytes(const std::string& s) { return {s.begin(), s.end()}; }
std::string FromBytes(const std::vector<uint8_t>& b) { return {b.begin(), b.end()}; }

// c10d's messages carry a backtrace after the first line; the first line says what happened.
std::string Why(const std::exception& e) {
  const std::string what = e.what();
  return what.substr(0, what.find('\n'));
}

// One generation's c10d group: the backend set-up ProcessGroup::Create uses too (c10d_group.h), on the
// one long-lived store under a prefix per generation, as a sync group re-forms (a ProcessGroup never).
struct Collective {
  c10::intrusive_ptr<CollectiveGroup> group;
  at::Device device{at::kCPU};

  // Throws (c10::Error) when a member does not come within the timeout.
  static std::unique_ptr<Collective> Form(const SyncGroupOptions& o, const c10::intrusive_ptr<c10d::Store>& store,
                                          int generation, int rank, int world, const std::string& device) {
    auto c = std::make_unique<Collective>();
    auto prefixed = c10::make_intrusive<c10d::PrefixStore>(GroupPrefix(generation), store);
    c->group = CreateCollectiveGroup(o.backend, prefixed, rank, world, o.timeout, o.store_host);
    if (o.backend == Backend::kNccl) c->device = at::Device(device);
    return c;
  }

  void Broadcast(at::Tensor tensor) {
    std::vector<at::Tensor> t = {std::move(tensor)};
    c10d::BroadcastOptions options;
    options.rootRank = 0;
    group->broadcast(t, options)->wait();
  }

  // The leader sends `*bytes`; a member's is replaced.
  void BroadcastBytes(std::string* bytes, bool leader) {
    at::Tensor size = torch::tensor({static_cast<int64_t>(leader ? bytes->size() : 0)}, torch::kInt64).to(device);
    Broadcast(size);
    const int64_t n = size.to(at::kCPU).item<int64_t>();
    if (n < 0 || n > (int64_t{1} << 30)) throw std::runtime_error(absl::StrCat("manifest of ", n, " bytes"));
    at::Tensor buffer = torch::empty({n}, torch::kUInt8);
    if (leader) std::memcpy(buffer.data_ptr<uint8_t>(), bytes->data(), static_cast<size_t>(n));
    buffer = buffer.to(device);
    Broadcast(buffer);
    if (!leader) {
      buffer = buffer.to(at::kCPU);
      bytes->assign(reinterpret_cast<const char*>(buffer.data_ptr<uint8_t>()), static_cast<size_t>(n));
    }
  }

  // Every bucket of the snapshot's buffer, in order, straight from (or into) the buffer. Two buckets
  // in flight, so the next one moves while `arrived` (may be null) reads the one before: a member
  // checksums each bucket as it lands instead of the whole buffer at the end.
  void BroadcastBuffer(at::Tensor& buffer, int64_t bucket_bytes,
                       const std::function<void(int64_t begin, int64_t end)>& arrived = nullptr) {
    const int64_t total = buffer.numel();
    using WorkPtr = decltype(group->barrier());  // c10d::ProcessGroup::Work in LibTorch 1.13, c10d::Work in 2
    std::vector<std::pair<WorkPtr, int64_t>> inflight;  // and the bucket's offset
    auto finish_oldest = [&] {
      inflight.front().first->wait();
      const int64_t begin = inflight.front().second;
      if (arrived) arrived(begin, std::min(total, begin + bucket_bytes));
      inflight.erase(inflight.begin());
    };
    for (int64_t offset = 0; offset < total; offset += bucket_bytes) {
      std::vector<at::Tensor> bucket = {buffer.narrow(0, offset, std::min(bucket_bytes, total - offset))};
      c10d::BroadcastOptions options;
      options.rootRank = 0;
      inflight.emplace_back(group->broadcast(bucket, options), offset);
      if (inflight.size() == 2) finish_oldest();
    }
    while (!inflight.empty()) finish_oldest();
  }
};

// "g rank world" as the leader writes it for a ticket.
struct Assignment {
  int generation = 0;
  int rank = 0;
  int world = 0;
};
std::optional<Assignment> ParseAssignment(const std::string& s) {
  std::vector<std::string> parts = absl::StrSplit(s, ' ');
  Assignment a;
  if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &a.generation) || !absl::SimpleAtoi(parts[1], &a.rank) ||
      !absl::SimpleAtoi(parts[2], &a.world) || a.rank < 1 || a.rank >= a.world) {
    return std::nullopt;
  }
  return a;
}

}  // namespace

absl::Status Validate(const SyncGroupOptions& o) {
  if (o.store_host.empty()) return absl::InvalidArgumentError("weight sync: store host is empty");
  if (o.store_port < 0 || o.store_port > 65535) return absl::InvalidArgumentError("weight sync: store port in 0..65535");
  if (o.timeout.count() <= 0) return absl::InvalidArgumentError("weight sync: timeout must be > 0");
  if (o.bucket_bytes < (int64_t{1} << 16) || o.bucket_bytes > (int64_t{1} << 31)) {
    return absl::InvalidArgumentError(absl::StrCat("weight sync: bucket bytes must be 64 KiB..2 GiB, got ", o.bucket_bytes));
  }
  if (o.backend == Backend::kNccl && o.device.rfind("cuda", 0) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("weight sync: nccl receives on a cuda device, got '", o.device, "'"));
  }
  return absl::OkStatus();
}

absl::Status SetStoreAddress(const std::string& host_port, SyncGroupOptions* o) {
  const size_t colon = host_port.rfind(':');
  int port = 0;
  if (colon == std::string::npos || colon == 0 || !absl::SimpleAtoi(host_port.substr(colon + 1), &port) || port < 1 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("need host:port, got '", host_port.substr(0, 256), "'"));
  }
  o->store_host = host_port.substr(0, colon);
  o->store_port = port;
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------------
// Leader

struct SyncLeader::Impl {
  SyncGroupOptions options;
  std::function<void(const SyncResult&)> on_sync;
  c10::intrusive_ptr<c10d::Store> store;

  std::mutex mu;
  std::condition_variable cv;
  std::shared_ptr<WeightSnapshot> queued;  // guarded by mu
  std::shared_ptr<WeightSnapshot> spare;   // guarded by mu; the last one sent, its buffer for the next copy
  bool busy = false;                       // guarded by mu
  bool stop = false;                       // guarded by mu
  SyncResult last;                         // guarded by mu

  // The sending thread's own state.
  struct Member {
    int64_t ticket = 0;
    std::string id;
  };
  int64_t tickets_seen = 0;
  std::vector<int64_t> unnamed;    // tickets taken whose member id is not written yet
  std::vector<Member> members;     // rank i + 1 is members[i]
  std::vector<Member> waiting;     // admitted at the next sync
  std::unique_ptr<Collective> group;
  int generation = 0;
  int64_t seq = 0;                 // the next announcement in this generation

  void Announce(const std::string& what) { store->set(AnnounceKey(generation, seq++), ToBytes(what)); }

  // Reads the tickets taken since the last look. A ticket with a member id already in the group or
  // waiting replaces that entry (the same actor, restarted).
  void AdmitTickets() {
    const int64_t taken = store->add(kTicketCounter, 0);
    for (int64_t t = tickets_seen + 1; t <= taken; ++t) unnamed.push_back(t);
    tickets_seen = taken;
    std::vector<int64_t> still_unnamed;
    for (int64_t t : unnamed) {
      if (!store->check({TicketKey(t)})) {
        still_unnamed.push_back(t);
        continue;
      }
      Member m{t, FromBytes(store->get(TicketKey(t)))};
      auto same_id = [&](const Member& x) { return x.id == m.id; };
      // The old ticket's process is gone; the new one waits, so the group re-forms at the next sync.
      members.erase(std::remove_if(members.begin(), members.end(), same_id), members.end());
      waiting.erase(std::remove_if(waiting.begin(), waiting.end(), same_id), waiting.end());
      waiting.push_back(std::move(m));
    }
    unnamed = std::move(still_unnamed);
  }

  std::string Names(const std::vector<Member>& list) const {
    return absl::StrJoin(list, ",", [](std::string* out, const Member& m) { absl::StrAppend(out, m.id); });
  }

  // Forms a new generation of everyone admitted; on failure drops them all (the live ones rejoin).
  absl::Status Reform(const std::string& device) {
    const int next = generation + 1;
    members.insert(members.end(), waiting.begin(), waiting.end());
    waiting.clear();
    const int world = static_cast<int>(members.size()) + 1;
    for (size_t i = 0; i < members.size(); ++i) {
      store->set(AssignKey(members[i].ticket), ToBytes(absl::StrCat(next, " ", i + 1, " ", world)));
    }
    // Members of the current group learn their new ranks from the assignments just written.
    if (group) Announce(absl::StrCat("reform ", next));
    group.reset();
    generation = next;
    seq = 0;
    if (members.empty()) return absl::OkStatus();
    try {
      group = Collective::Form(options, store, generation, 0, world, device);
    } catch (const std::exception& e) {
      std::vector<Member> absent;
      for (const Member& m : members) {
        if (!store->check({HereKey(generation, m.ticket)})) absent.push_back(m);
      }
      const std::string dropped = Names(members);
      members.clear();
      return absl::UnavailableError(absl::StrCat("weight sync: generation ", generation, " did not form within ",
                                                 options.timeout.count(), " ms (", absent.empty() ? "every member came"
                                                 : "absent: " + Names(absent), "); dropped ", dropped,
                                                 ", the live ones rejoin: ", Why(e)));
    }
    return absl::OkStatus();
  }

  SyncResult Sync(WeightSnapshot& snapshot) {
    const auto start = Clock::now();
    SyncResult r;
    r.version = snapshot.version();
    try {
      AdmitTickets();
      if (!group || !waiting.empty()) r.status = Reform(snapshot.buffer().device().str());
      r.generation = generation;
      r.members = static_cast<int>(members.size());
      if (r.status.ok() && group) {
        Announce(absl::StrCat("weights ", snapshot.serial()));
        try {
          std::string manifest = snapshot.Manifest();
          group->BroadcastBytes(&manifest, /*leader=*/true);
          group->BroadcastBuffer(snapshot.buffer(), options.bucket_bytes);
          r.bytes_sent = snapshot.buffer().numel() * r.members;
        } catch (const std::exception& e) {
          r.status = absl::UnavailableError(absl::StrCat("weight sync: broadcast of version ", snapshot.version(),
                                                         " to ", Names(members), " failed; dropped them: ", Why(e)));
          group.reset();
          members.clear();
          Announce("end");  // members that got everything are waiting on the store, not in the collective
        }
      }
    } catch (const std::exception& e) {  // the store itself (our own server) failed
      r.status = absl::InternalError(absl::StrCat("weight sync: store: ", Why(e)));
      group.reset();
      members.clear();
    }
    r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return r;
  }
};

SyncLeader::SyncLeader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<SyncLeader>> SyncLeader::Start(const SyncGroupOptions& options,
                                                              std::function<void(const SyncResult&)> on_sync) {
  if (absl::Status s = Validate(options); !s.ok()) return s;
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->on_sync = std::move(on_sync);
  int port = 0;
  try {
    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<std::uint16_t>(options.store_port);
    store_options.isServer = true;
    store_options.waitWorkers = false;  // members come and go; nobody is waited for here
    store_options.timeout = options.timeout;
    auto store = c10::make_intrusive<c10d::TCPStore>("127.0.0.1", store_options);
    port = store->getPort();
    impl->store = store;
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("weight sync: cannot host the store on port ", options.store_port, ": ", Why(e)));
  }
  std::unique_ptr<SyncLeader> leader(new SyncLeader(std::move(impl)));
  leader->port_ = port;
  leader->thread_ = std::thread([l = leader.get()] { l->Run(); });
  return leader;
}

SyncLeader::~SyncLeader() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->cv.notify_all();
  if (thread_.joinable()) thread_.join();
}

absl::Status SyncLeader::Publish(const NamedTensors& tensors, int64_t version, int64_t serial) {
  std::shared_ptr<WeightSnapshot> spare;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    spare = std::move(impl_->spare);
  }
  auto snapshot = WeightSnapshot::Copy(tensors, version, serial, std::move(spare));
  if (!snapshot.ok()) return snapshot.status();
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->queued = std::move(*snapshot);  // a queued older version is never sent: actors want the newest
  }
  impl_->cv.notify_all();
  return absl::OkStatus();
}

SyncResult SyncLeader::WaitIdle() {
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->cv.wait(lock, [&] { return impl_->stop || (!impl_->queued && !impl_->busy); });
  return impl_->last;
}

void SyncLeader::Run() {
  Impl& m = *impl_;
  for (;;) {
    std::shared_ptr<WeightSnapshot> snapshot;
    {
      std::unique_lock<std::mutex> lock(m.mu);
      m.cv.wait(lock, [&] { return m.stop || m.queued; });
      if (m.stop) break;
      snapshot = std::move(m.queued);
      m.busy = true;
    }
    SyncResult r = m.Sync(*snapshot);
    if (m.on_sync) m.on_sync(r);
    {
      std::lock_guard<std::mutex> lock(m.mu);
      m.last = r;
      m.busy = false;
      if (!m.spare) m.spare = std::move(snapshot);  // kept for the next copy: at most two buffers in all
    }
    m.cv.notify_all();
  }
  try {
    if (m.group) m.Announce("end");
  } catch (const std::exception&) {
    // Stopping: members find the store gone and reconnect to the next leader.
  }
}

// ---------------------------------------------------------------------------------------------------
// Member

struct SyncMember::Impl {
  SyncGroupOptions options;
  std::string id;
  Events events;

  mutable std::mutex mu;
  std::condition_variable cv;
  bool stop = false;                                // guarded by mu
  bool in_group = false;                            // guarded by mu
  std::shared_ptr<WeightSnapshot> latest;           // guarded by mu
  std::shared_ptr<WeightSnapshot> spare;            // guarded by mu; a released buffer for the next receive
  int64_t latest_serial = -1;                       // guarded by mu

  c10::intrusive_ptr<c10d::Store> store;  // the receiving thread's

  bool Stopping() {
    std::lock_guard<std::mutex> lock(mu);
    return stop;
  }
  // Sleeps up to `d`, returning early (true) when stopping.
  bool SleepOrStop(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, d, [&] { return stop; });
  }
  void SetInGroup(bool value) {
    {
      std::lock_guard<std::mutex> lock(mu);
      in_group = value;
    }
    cv.notify_all();  // a WaitFor gives up when the member leaves its group
  }
  // The value of `key` once the leader writes it; nullopt when stopping first.
  std::optional<std::string> WaitKey(const std::string& key) {
    while (!store->check({key})) {
      if (SleepOrStop(kPollInterval)) return std::nullopt;
    }
    return FromBytes(store->get(key));
  }

  void Connect() {
    c10d::TCPStoreOptions o;
    o.port = static_cast<std::uint16_t>(options.store_port);
    o.isServer = false;
    o.waitWorkers = false;
    o.timeout = options.timeout;
    store = c10::make_intrusive<c10d::TCPStore>(options.store_host, o);
  }

  // Receives one announced serial into a new snapshot and verifies it.
  absl::Status Receive(Collective& group, int64_t announced, Clock::time_point start) {
    std::string manifest;
    group.BroadcastBytes(&manifest, /*leader=*/false);
    std::shared_ptr<WeightSnapshot> reuse;
    {
      std::lock_guard<std::mutex> lock(mu);
      reuse = std::move(spare);
    }
    auto snapshot = WeightSnapshot::Allocate(manifest, options.device, std::move(reuse));
    if (!snapshot.ok()) return snapshot.status();  // the group is now out of step: the caller leaves it
    // Each bucket is checksummed and checked for NaN/inf in one pass while the next one arrives, so a
    // verified snapshot needs no second pass over the model before it is loaded.
    WeightSnapshot::Check check;
    double check_seconds = 0;
    const WeightSnapshot& s = **snapshot;
    group.BroadcastBuffer((*snapshot)->buffer(), options.bucket_bytes, [&](int64_t begin, int64_t end) {
      const auto t = Clock::now();
      s.Continue(&check, begin, end);
      check_seconds += std::chrono::duration<double>(Clock::now() - t).count();
    });
    if ((*snapshot)->serial() != announced) {
      return absl::DataLossError(absl::StrCat("weight broadcast: announced serial ", announced,
                                              ", the manifest says ", (*snapshot)->serial()));
    }
    if (absl::Status v = (*snapshot)->Verify(check); !v.ok()) return v;
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (events.on_received) events.on_received(**snapshot, seconds, check_seconds);
    {
      std::lock_guard<std::mutex> lock(mu);
      // The one it replaces is reused when nobody took it.
      if (latest && latest.use_count() == 1 && !spare) spare = std::move(latest);
      latest = std::move(*snapshot);
      latest_serial = latest->serial();
    }
    cv.notify_all();
    return absl::OkStatus();
  }

  // One membership: a ticket, then generations until the group ends or breaks. Returns why it ended.
  absl::Status Membership() {
    if (!store) Connect();
    const int64_t ticket = store->add(kTicketCounter, 1);
    store->set(TicketKey(ticket), ToBytes(id));
    std::optional<std::string> assigned = WaitKey(AssignKey(ticket));
    while (assigned) {
      std::optional<Assignment> a = ParseAssignment(*assigned);
      if (!a) return absl::DataLossError(absl::StrCat("weight sync: bad assignment '", assigned->substr(0, 64), "'"));
      store->set(HereKey(a->generation, ticket), ToBytes("1"));
      std::unique_ptr<Collective> group = Collective::Form(options, store, a->generation, a->rank, a->world,
                                                           options.device);
      SetInGroup(true);
      assigned.reset();
      for (int64_t seq = 0;; ++seq) {
        std::optional<std::string> what = WaitKey(AnnounceKey(a->generation, seq));
        if (!what) return absl::CancelledError("stopping");
        const auto start = Clock::now();
        int64_t value = 0;
        absl::string_view rest(*what);
        if (rest == "end") return absl::AbortedError(absl::StrCat("weight sync: generation ", a->generation, " ended"));
        if (absl::ConsumePrefix(&rest, "reform ")) {
          std::string next = FromBytes(store->get(AssignKey(ticket)));
          std::optional<Assignment> b = ParseAssignment(next);
          if (!b || std::to_string(b->generation) != std::string(rest)) {
            return absl::AbortedError("weight sync: left out of the next generation");
          }
          assigned = std::move(next);
          break;
        }
        if (!absl::ConsumePrefix(&rest, "weights ") || !absl::SimpleAtoi(rest, &value)) {
          return absl::DataLossError(absl::StrCat("weight sync: unknown announcement '", what->substr(0, 64), "'"));
        }
        if (absl::Status s = Receive(*group, value, start); !s.ok()) return s;
      }
      // Still in the group while it re-forms: the next broadcast comes to the new generation.
    }
    return absl::CancelledError("stopping");
  }
};

SyncMember::SyncMember(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<SyncMember>> SyncMember::Start(const SyncGroupOptions& options, std::string member_id,
                                                              Events events) {
  if (absl::Status s = Validate(options); !s.ok()) return s;
  if (options.store_port == 0) return absl::InvalidArgumentError("weight sync: a member needs the store's port");
  if (member_id.empty() || member_id.size() > 256) {
    return absl::InvalidArgumentError("weight sync: member id must be 1..256 bytes");
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->id = std::move(member_id);
  impl->events = std::move(events);
  std::unique_ptr<SyncMember> member(new SyncMember(std::move(impl)));
  member->thread_ = std::thread([m = member.get()] { m->Run(); });
  return member;
}

SyncMember::~SyncMember() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->cv.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SyncMember::Run() {
  Impl& m = *impl_;
  while (!m.Stopping()) {
    absl::Status why;
    try {
      why = m.Membership();
    } catch (const std::exception& e) {
      // A collective or the store failed (the leader or another member went away): start over with a
      // fresh connection and a new ticket.
      why = absl::UnavailableError(absl::StrCat("weight sync: ", Why(e)));
      m.store.reset();
    }
    m.SetInGroup(false);
    if (m.Stopping()) break;
    if (m.events.on_left) m.events.on_left(why);
    // A lost connection is retried after a pause; an ended group at once.
    if (!m.store && m.SleepOrStop(std::chrono::milliseconds(500))) break;
  }
}

bool SyncMember::in_group() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->in_group;
}

int64_t SyncMember::latest_serial() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->latest_serial;
}

absl::StatusOr<std::shared_ptr<const WeightSnapshot>> SyncMember::WaitFor(int64_t min_serial,
                                                                          std::chrono::milliseconds wait) {
  std::unique_lock<std::mutex> lock(impl_->mu);
  auto arrived = [&] { return impl_->latest && impl_->latest_serial >= min_serial; };
  impl_->cv.wait_for(lock, wait, [&] { return impl_->stop || arrived() || !impl_->in_group; });
  if (arrived()) return impl_->latest;
  return absl::NotFoundError(absl::StrCat("weight sync: weights serial ", min_serial, " not received (",
                                          impl_->in_group ? "waited " + std::to_string(wait.count()) + " ms"
                                                          : "not in a group", "; newest: ", impl_->latest_serial, ")"));
}

void SyncMember::Release() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->latest && impl_->latest.use_count() == 1 && !impl_->spare) impl_->spare = std::move(impl_->latest);
  impl_->latest.reset();
}

}  // namespace r1r::dist
