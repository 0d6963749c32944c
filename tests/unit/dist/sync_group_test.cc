// The weight sync group: a leader and members as threads of this process, Gloo on loopback, the store
// on a free port. Covers the snapshot format, bit-identity with the gRPC stream's bytes, a member
// that never joins, and a killed member that rejoins.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <thread>

#include <absl/strings/match.h>

#include "common/dist/crc32c.h"
#include "common/dist/sync_group.h"
#include "common/dist/weight_snapshot.h"
#include "common/model/config.h"
#include "common/model/model.h"
#include "common/model/weights.h"
#include "common/train/weight_codec.h"

namespace r1r::dist {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

double SecondsSince(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

bool HaveGloo() {
#ifdef R1R_TEST_NO_GLOO
  return false;
#else
  return true;
#endif
}

// A tiny Qwen2.5-VL's weights (bf16, so slots of odd byte counts get padded), in name order as
// the gRPC stream sends them, plus one fp32 tensor larger than a 64 KiB bucket.
NamedTensors TinyWeights(uint64_t seed) {
  auto model = model::Qwen2_5_VL::Create(model::MakeTinyConfig(), model::ModelOptions{at::kBFloat16, at::kCPU}, seed);
  EXPECT_TRUE(model.ok()) << model.status();
  NamedTensors out;
  for (auto& [name, t] : model::ExportWeights(**model)) out.emplace_back(name, t);
  torch::manual_seed(seed);
  out.emplace_back("zz.large_fp32", torch::randn({300, 77}));
  return out;
}

bool BitEqual(const at::Tensor& a, const at::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  at::Tensor x = a.contiguous(), y = b.contiguous();
  return std::memcmp(x.data_ptr(), y.data_ptr(), x.numel() * x.element_size()) == 0;
}

SyncGroupOptions Options(int port, milliseconds timeout) {
  SyncGroupOptions o;
  o.store_port = port;
  o.timeout = timeout;
  o.bucket_bytes = 64 << 10;  // many buckets, tensors split across them
  return o;
}

// A raw store client, as a member that takes a ticket and then never comes would use.
c10::intrusive_ptr<c10d::TCPStore> StoreClient(int port) {
  c10d::TCPStoreOptions o;
  o.port = static_cast<std::uint16_t>(port);
  o.waitWorkers = false;
  o.timeout = std::chrono::seconds(10);
  return c10::make_intrusive<c10d::TCPStore>("127.0.0.1", o);
}

// Waits until `n` tickets were taken at the leader's store.
void WaitForTickets(int port, int64_t n) {
  auto store = StoreClient(port);
  const auto start = Clock::now();
  while (store->add("join/seq", 0) < n && SecondsSince(start) < 20) std::this_thread::sleep_for(milliseconds(5));
  ASSERT_GE(store->add("join/seq", 0), n);
}

TEST(dist, Crc32cIsTheStreamsChecksum) {
  EXPECT_EQ(Crc32c(0, "123456789", 9), 0xE3069283u);  // the CRC-32C check value
  at::Tensor bytes = torch::randint(0, 256, {100003}, torch::kUInt8);
  EXPECT_EQ(Crc32c(0, bytes.data_ptr(), 100003), train::Crc32c(0, bytes.data_ptr(), 100003));
  EXPECT_EQ(Crc32c(Crc32c(0, bytes.data_ptr(), 5), bytes.data_ptr<uint8_t>() + 5, 99998),
            Crc32c(0, bytes.data_ptr(), 100003));
}

TEST(dist, SnapshotManifestRoundTripsAndNamesBadFields) {
  NamedTensors weights = TinyWeights(1);
  auto snapshot = WeightSnapshot::Copy(weights, 7, 70);
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  auto received = WeightSnapshot::Allocate((*snapshot)->Manifest(), "cpu");
  ASSERT_TRUE(received.ok()) << received.status();
  EXPECT_EQ((*received)->version(), 7);
  EXPECT_EQ((*received)->serial(), 70);
  EXPECT_EQ((*received)->tensor_bytes(), (*snapshot)->tensor_bytes());
  ASSERT_EQ((*received)->slots().size(), weights.size());
  (*received)->buffer().copy_((*snapshot)->buffer());
  EXPECT_TRUE((*received)->Verify().ok());
  // In bucket-sized steps (not aligned to the slots), as a member checks buckets while they arrive.
  uint32_t crc = 0;
  const int64_t total = (*received)->buffer().numel();
  for (int64_t b = 0; b < total; b += 1000) crc = (*received)->ContinueCrc32c(crc, b, std::min<int64_t>(total, b + 1000));
  EXPECT_EQ(crc, (*snapshot)->crc32c());
  EXPECT_TRUE((*received)->Verify(crc).ok());
  // One flipped bit in a tensor is caught before anything is loaded.
  const TensorSlot& slot = (*received)->slots()[3];
  (*received)->buffer()[slot.offset + slot.bytes / 2].bitwise_xor_(1);
  EXPECT_EQ((*received)->Verify().code(), absl::StatusCode::kDataLoss);

  const std::string good = (*snapshot)->Manifest();
  auto bad = [&](const std::string& from, const std::string& to) {
    std::string m = good;
    const size_t at = m.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    m.replace(at, from.size(), to);
    return WeightSnapshot::Allocate(m, "cpu").status();
  };
  EXPECT_EQ(bad("r1r-weight-snapshot 1", "r1r-weight-snapshot 9").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(bad("buffer ", "buffer 99999999999999999").message(), "buffer"));
  EXPECT_TRUE(absl::StrContains(bad("tensors ", "tensors 1").message(), "tensors"));
  // A shape that does not match the byte count, and a negative dimension, name the tensor.
  const std::string first = weights[0].first;
  auto shape_error = bad(first + "\tBF16\t", first + "\tF32\t");
  EXPECT_TRUE(absl::StrContains(shape_error.message(), first)) << shape_error;
  const std::string last_line = "zz.large_fp32\tF32\t300,77";
  EXPECT_TRUE(absl::StrContains(bad(last_line, "zz.large_fp32\tF32\t-300,77").message(), "zz.large_fp32"));
  EXPECT_TRUE(absl::StrContains(bad(last_line, "zz.large_fp32\tF77\t300,77").message(), "unknown dtype"));
}

// The fused check a member runs per bucket: over ranges that cut elements in two (999 bytes), a NaN
// or an infinity in any floating-point tensor is found and named, also in an element split between
// two ranges, and the checksum is the one Verify() computes in one go.
TEST(dist, BucketCheckFindsNonFiniteWeightsAcrossRangeEdges) {
  NamedTensors weights = TinyWeights(6);
  auto snapshot = WeightSnapshot::Copy(weights, 1, 10);
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  const int64_t total = (*snapshot)->buffer().numel();
  auto check_in_ranges = [&](const WeightSnapshot& s, int64_t step) {
    WeightSnapshot::Check check;
    for (int64_t b = 0; b < total; b += step) s.Continue(&check, b, std::min<int64_t>(total, b + step));
    return check;
  };
  WeightSnapshot::Check clean = check_in_ranges(**snapshot, 999);
  EXPECT_EQ(clean.crc, (*snapshot)->crc32c());
  EXPECT_EQ(clean.nonfinite_slot, -1);
  EXPECT_TRUE((*snapshot)->Verify(clean).ok());

  const auto& slots = (*snapshot)->slots();
  const int64_t fp32 = static_cast<int64_t>(slots.size()) - 1;  // zz.large_fp32
  ASSERT_EQ(slots[fp32].name, "zz.large_fp32");
  int64_t bf16 = -1;
  for (size_t i = 0; i < slots.size() && bf16 < 0; ++i) {
    if (slots[i].dtype == "BF16" && slots[i].bytes > 4000) bf16 = static_cast<int64_t>(i);
  }
  ASSERT_GE(bf16, 0);
  struct Case {
    int64_t slot;
    int64_t element;  // its index in the slot
    float value;
  };
  // An fp32 element whose 4 bytes straddle a 999-byte range edge, a bf16 one inside a range, an
  // infinity as the fp32 slot's last element.
  const int64_t fp32_elements = slots[fp32].bytes / 4;
  int64_t straddling = 0;
  for (int64_t e = 0; e < fp32_elements; ++e) {
    const int64_t at = slots[fp32].offset + e * 4;
    if (at / 999 != (at + 3) / 999) {
      straddling = e;
      break;
    }
  }
  ASSERT_GT(straddling, 0);
  for (const Case& c : {Case{fp32, straddling, std::nanf("")}, Case{bf16, 5, -std::numeric_limits<float>::infinity()},
                        Case{fp32, fp32_elements - 1, std::numeric_limits<float>::infinity()}}) {
    NamedTensors bad = weights;
    bad[c.slot].second = bad[c.slot].second.clone();
    bad[c.slot].second.view(-1)[c.element] = c.value;
    auto s = WeightSnapshot::Copy(bad, 1, 11);
    ASSERT_TRUE(s.ok()) << s.status();
    for (int64_t step : {int64_t{999}, int64_t{64} << 10, total}) {
      WeightSnapshot::Check check = check_in_ranges(**s, step);
      EXPECT_EQ(check.crc, (*s)->crc32c()) << step;
      EXPECT_EQ(check.nonfinite_slot, c.slot) << slots[c.slot].name << " element " << c.element << " step " << step;
      absl::Status v = (*s)->Verify(check);
      EXPECT_EQ(v.code(), absl::StatusCode::kDataLoss);
      EXPECT_TRUE(absl::StrContains(v.message(), slots[c.slot].name)) << v;
    }
  }
}

TEST(dist, SyncOptionsAreValidated) {
  SyncGroupOptions o;
  o.bucket_bytes = 1000;
  EXPECT_TRUE(absl::StrContains(Validate(o).message(), "bucket"));
  o = SyncGroupOptions();
  o.timeout = milliseconds(0);
  EXPECT_TRUE(absl::StrContains(Validate(o).message(), "timeout"));
  o = SyncGroupOptions();
  o.backend = Backend::kNccl;
  EXPECT_TRUE(absl::StrContains(Validate(o).message(), "cuda"));
  EXPECT_TRUE(absl::StrContains(SyncMember::Start(SyncGroupOptions(), "").status().message(), "member id"));
  ASSERT_TRUE(SetStoreAddress("r1r-learner:29600", &o).ok());
  EXPECT_EQ(o.store_host, "r1r-learner");
  EXPECT_EQ(o.store_port, 29600);
  for (const char* bad : {"r1r-learner", ":29600", "host:0", "host:70000", "host:x"}) {
    EXPECT_TRUE(absl::StrContains(SetStoreAddress(bad, &o).message(), bad)) << bad;
  }
}

// What an actor assembles from the gRPC stream (train::ViewTensor chunks into a TensorAssembler, the
// trailer's CRC32C) against what it receives from the broadcast: the same bits and the same checksum.
TEST(dist, BroadcastWeightsAreBitIdenticalToStreamedWeights) {
  if (!HaveGloo()) GTEST_SKIP() << "no Gloo in this build";
  NamedTensors weights = TinyWeights(2);
  train::TensorAssembler assembler;
  uint32_t stream_crc = 0;
  for (const auto& [name, t] : weights) {
    auto view = train::ViewTensor(name, t);
    ASSERT_TRUE(view.ok()) << view.status();
    ASSERT_TRUE(assembler.Begin(view->name, view->dtype, view->shape).ok());
    for (size_t offset = 0; offset < view->size; offset += 1 << 20) {
      const size_t n = std::min<size_t>(1 << 20, view->size - offset);
      ASSERT_TRUE(assembler.Append(static_cast<int64_t>(offset), view->data + offset, n).ok());
      stream_crc = train::Crc32c(stream_crc, view->data + offset, n);
    }
  }
  auto streamed = assembler.Finish();
  ASSERT_TRUE(streamed.ok()) << streamed.status();

  auto leader = SyncLeader::Start(Options(0, std::chrono::seconds(20)));
  ASSERT_TRUE(leader.ok()) << leader.status();
  const SyncGroupOptions o = Options((*leader)->port(), std::chrono::seconds(20));
  auto a = SyncMember::Start(o, "actor-a");
  auto b = SyncMember::Start(o, "actor-b");
  ASSERT_TRUE(a.ok() && b.ok());
  WaitForTickets((*leader)->port(), 2);
  ASSERT_TRUE((*leader)->Publish(weights, 3, 3).ok());
  SyncResult r = (*leader)->WaitIdle();
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.members, 2);
  EXPECT_EQ(r.version, 3);
  for (auto* m : {&*a, &*b}) {
    auto got = (*m)->WaitFor(3, std::chrono::seconds(20));
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ((*got)->version(), 3);
    EXPECT_EQ((*got)->crc32c(), stream_crc);
    NamedTensors tensors = (*got)->Tensors();
    ASSERT_EQ(tensors.size(), streamed->size());
    for (const auto& [name, t] : tensors) {
      ASSERT_TRUE(streamed->count(name)) << name;
      EXPECT_TRUE(BitEqual(t, streamed->at(name))) << name;
    }
  }
}

// A broadcast of weights holding a NaN passes its CRC32C (the leader sent what it had) but is never
// handed to an actor: the member finds it while the buckets arrive, leaves the group and keeps the
// version before; the actor then pulls the stream, whose receiver refuses it too.
TEST(dist, NonFiniteBroadcastIsNeverHandedOut) {
  if (!HaveGloo()) GTEST_SKIP() << "no Gloo in this build";
  auto leader = SyncLeader::Start(Options(0, std::chrono::seconds(20)));
  ASSERT_TRUE(leader.ok()) << leader.status();
  std::mutex mu;
  std::vector<std::string> left;
  SyncMember::Events events;
  events.on_left = [&](const absl::Status& why) {
    std::lock_guard<std::mutex> lock(mu);
    left.emplace_back(why.message());
  };
  auto member = SyncMember::Start(Options((*leader)->port(), std::chrono::seconds(20)), "actor-a", events);
  ASSERT_TRUE(member.ok());
  WaitForTickets((*leader)->port(), 1);
  NamedTensors good = TinyWeights(7);
  ASSERT_TRUE((*leader)->Publish(good, 1, 1).ok());
  ASSERT_TRUE((*leader)->WaitIdle().status.ok());
  ASSERT_TRUE((*member)->WaitFor(1, std::chrono::seconds(10)).ok());

  NamedTensors bad = good;
  bad.back().second = bad.back().second.clone();
  bad.back().second[150][40] = std::nanf("");
  ASSERT_TRUE((*leader)->Publish(bad, 2, 2).ok());
  (*leader)->WaitIdle();
  auto got = (*member)->WaitFor(2, std::chrono::seconds(3));
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound) << "a non-finite broadcast was handed out";
  EXPECT_EQ((*member)->latest_serial(), 1);
  const auto start = Clock::now();  // on_left runs just after the member marks itself out of the group
  auto any_left = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return !left.empty();
  };
  while (!any_left() && SecondsSince(start) < 10) std::this_thread::sleep_for(milliseconds(5));
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_FALSE(left.empty());
  EXPECT_TRUE(absl::StrContains(left.front(), "zz.large_fp32 holds NaN")) << left.front();
}

// A member that takes a ticket and never connects fails one generation after the timeout; the
// caller of Publish never waits for it, and the live member is served at the next sync.
TEST(dist, MemberThatNeverJoinsDoesNotBlockTheLeaderPastTheTimeout) {
  if (!HaveGloo()) GTEST_SKIP() << "no Gloo in this build";
  const milliseconds timeout(2000);
  auto leader = SyncLeader::Start(Options(0, timeout));
  ASSERT_TRUE(leader.ok()) << leader.status();
  const int port = (*leader)->port();
  auto live = SyncMember::Start(Options(port, timeout), "actor-live");
  ASSERT_TRUE(live.ok());
  auto ghost = StoreClient(port);
  const int64_t ticket = ghost->add("join/seq", 1);
  const std::string id = "actor-ghost";
  ghost->set("join/" + std::to_string(ticket), std::vector<uint8_t>(id.begin(), id.end()));
  WaitForTickets(port, 2);

  NamedTensors weights = TinyWeights(3);
  auto start = Clock::now();
  ASSERT_TRUE((*leader)->Publish(weights, 1, 1).ok());
  EXPECT_LT(SecondsSince(start), 1.0);  // the copy only
  SyncResult r = (*leader)->WaitIdle();
  EXPECT_EQ(r.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(r.status.message(), "absent: actor-ghost")) << r.status;
  EXPECT_LT(SecondsSince(start), 2.0 + 3.0);  // the timeout plus slack, not forever

  // Each step publishes; the live member has rejoined by one of the next syncs.
  start = Clock::now();
  int64_t version = 2;
  for (; SecondsSince(start) < 20; ++version) {
    ASSERT_TRUE((*leader)->Publish(weights, version, version).ok());
    r = (*leader)->WaitIdle();
    if (r.members == 1 && r.status.ok()) break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.members, 1);
  auto got = (*live)->WaitFor(version, std::chrono::seconds(10));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ((*got)->version(), version);
}

// A member that goes away (its process killed: its sockets close) and comes back under the same id
// takes the old one's place at the next sync, which reaches both it and the member that stayed,
// without waiting for the timeout on the one that left.
TEST(dist, KilledMemberRejoinsAndReceivesTheCurrentVersion) {
  if (!HaveGloo()) GTEST_SKIP() << "no Gloo in this build";
  const milliseconds timeout(10000);
  auto leader = SyncLeader::Start(Options(0, timeout));
  ASSERT_TRUE(leader.ok()) << leader.status();
  const SyncGroupOptions o = Options((*leader)->port(), timeout);
  auto stays = SyncMember::Start(o, "actor-0");
  auto killed = SyncMember::Start(o, "actor-1");
  ASSERT_TRUE(stays.ok() && killed.ok());
  WaitForTickets(o.store_port, 2);
  NamedTensors v1 = TinyWeights(4), v2 = TinyWeights(5);
  ASSERT_TRUE((*leader)->Publish(v1, 1, 1).ok());
  SyncResult r = (*leader)->WaitIdle();
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_TRUE((*killed)->WaitFor(1, std::chrono::seconds(10)).ok());

  killed->reset();
  auto restarted = SyncMember::Start(o, "actor-1");
  ASSERT_TRUE(restarted.ok());
  WaitForTickets(o.store_port, 3);
  const auto start = Clock::now();
  ASSERT_TRUE((*leader)->Publish(v2, 2, 2).ok());
  r = (*leader)->WaitIdle();
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.members, 2);
  EXPECT_EQ(r.generation, 2);
  EXPECT_LT(SecondsSince(start), timeout.count() / 1000.0 / 2);  // nobody waited for the old actor-1
  for (auto* m : {&*stays, &*restarted}) {
    auto got = (*m)->WaitFor(2, std::chrono::seconds(10));
    ASSERT_TRUE(got.ok()) << got.status();
    NamedTensors tensors = (*got)->Tensors();
    ASSERT_EQ(tensors.size(), v2.size());
    for (size_t i = 0; i < v2.size(); ++i) EXPECT_TRUE(BitEqual(tensors[i].second, v2[i].second)) << v2[i].first;
  }
  EXPECT_EQ((*restarted)->latest_serial(), 2);
}

}  // namespace
}  // namespace r1r::dist
