// Two Gloo ranks in two threads of this process, meeting over a TCPStore on loopback.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>

#include "common/dist/process_group.h"
#include "tests/unit/dist/free_port.h"
#include "tests/unit/dist/gloo_ranks.h"

namespace r1r::dist {
namespace {

// Runs body(group) on ranks 0..world-1, each in its own thread with its own process group.
// Returns false when this build has no Gloo backend (the caller skips).
bool RunRanks(int world, const std::function<void(ProcessGroup&)>& body) {
  return testing::OnGlooRanks(world, std::chrono::seconds(60), [&](int, ProcessGroup* group) { body(*group); });
}

TEST(dist, AllReduceSumsMinsAndMaxesAcrossRanks) {
  if (!RunRanks(2, [](ProcessGroup& g) {
    const double r = g.rank();
    // Several tensors of different shapes in one call, and one of another dtype.
    std::vector<at::Tensor> sum = {torch::tensor({1.0 + r, 10.0 * r}, torch::kFloat64),
                                   torch::full({2, 3}, r + 1, torch::kFloat64),
                                   torch::full({4}, static_cast<int64_t>(r) + 5, torch::kInt64)};
    ASSERT_TRUE(g.AllReduce(sum).ok());
    EXPECT_DOUBLE_EQ(sum[0][0].item<double>(), 3.0);
    EXPECT_DOUBLE_EQ(sum[0][1].item<double>(), 10.0);
    EXPECT_TRUE(sum[1].equal(torch::full({2, 3}, 3.0, torch::kFloat64)));
    EXPECT_TRUE(sum[2].equal(torch::full({4}, 11, torch::kInt64)));
    std::vector<at::Tensor> low = {torch::tensor({5.0 - r})}, high = {torch::tensor({5.0 - r})};
    ASSERT_TRUE(g.AllReduce(low, ReduceOp::kMin).ok());
    ASSERT_TRUE(g.AllReduce(high, ReduceOp::kMax).ok());
    EXPECT_FLOAT_EQ(low[0].item<float>(), 4.0f);
    EXPECT_FLOAT_EQ(high[0].item<float>(), 5.0f);
    auto count = g.SumOverRanks(g.rank() == 1 ? 4 : 3);
    ASSERT_TRUE(count.ok());
    EXPECT_EQ(*count, 7);
  })) {
    GTEST_SKIP() << "this build has no Gloo backend";
  }
}

// The ZeRO primitives: each rank gets the sum of its own chunk; every rank gets every rank's slice.
TEST(dist, ReduceScatterAndAllGatherMoveEachRanksChunk) {
  if (!RunRanks(3, [](ProcessGroup& g) {
    const double r = g.rank();
    // Input [3 * 4]: rank r contributes (r + 1) * (i + 1) at element i.
    at::Tensor input = (torch::arange(12, torch::kFloat) + 1) * (r + 1);
    at::Tensor mine = torch::zeros({4});
    ASSERT_TRUE(g.ReduceScatter(input, mine).ok());
    // Sum over ranks of (r + 1) = 6; this rank's chunk is elements [4 r, 4 r + 4).
    EXPECT_TRUE(mine.equal((torch::arange(4 * g.rank(), 4 * g.rank() + 4, torch::kFloat) + 1) * 6)) << mine;
    EXPECT_TRUE(input.equal((torch::arange(12, torch::kFloat) + 1) * (r + 1)));  // the input is untouched
    at::Tensor all = torch::zeros({12});
    // In place, as ZeRO's parameter refresh does: the input is a view of the output.
    all.narrow(0, 4 * g.rank(), 4).fill_(r);
    ASSERT_TRUE(g.AllGather(all.narrow(0, 4 * g.rank(), 4), all).ok());
    EXPECT_TRUE(all.equal(torch::arange(3, torch::kFloat).repeat_interleave(4))) << all;
    at::Tensor wrong = torch::zeros({5});
    EXPECT_EQ(g.ReduceScatter(input, wrong).code(), absl::StatusCode::kInvalidArgument);
  })) {
    GTEST_SKIP() << "this build has no Gloo backend";
  }
}

TEST(dist, BroadcastBytesCarriesRootPayloadIncludingEmpty) {
  if (!RunRanks(2, [](ProcessGroup& g) {
    std::string payload = g.rank() == 0 ? std::string("step\0with nul", 13) : "stale";
    ASSERT_TRUE(g.BroadcastBytes(&payload, 0).ok());
    EXPECT_EQ(payload, std::string("step\0with nul", 13));
    std::string empty = g.rank() == 0 ? "" : "stale";
    ASSERT_TRUE(g.BroadcastBytes(&empty, 0).ok());
    EXPECT_EQ(empty, "");
  })) {
    GTEST_SKIP() << "this build has no Gloo backend";
  }
}

TEST(dist, GradientAllReduceSumsEveryBucketAndFillsMissingGradients) {
  if (!RunRanks(2, [](ProcessGroup& g) {
    // Three parameters, a bucket small enough to split them, and one without a gradient on rank 1.
    std::vector<at::Tensor> params = {torch::zeros({3}, torch::requires_grad()),
                                      torch::zeros({2, 2}, torch::requires_grad()),
                                      torch::zeros({5}, torch::requires_grad())};
    for (size_t i = 0; i < params.size(); ++i) {
      if (g.rank() == 1 && i == 1) continue;
      params[i].mutable_grad() = torch::full_like(params[i], static_cast<double>(i + 1) * (g.rank() + 1));
    }
    ASSERT_TRUE(AllReduceGradients(g, params, /*bucket_bytes=*/20).ok());
    EXPECT_TRUE(params[0].grad().allclose(torch::full({3}, 3.0)));
    EXPECT_TRUE(params[1].grad().allclose(torch::full({2, 2}, 2.0)));  // 2 from rank 0, none from rank 1
    EXPECT_TRUE(params[2].grad().allclose(torch::full({5}, 9.0)));
  })) {
    GTEST_SKIP() << "this build has no Gloo backend";
  }
}

TEST(dist, RankShareSplitsAnOrderWithoutOverlap) {
  const std::vector<size_t> order = {4, 0, 3, 1, 2};
  EXPECT_EQ(RankShare(order, 0, 2), (std::vector<size_t>{4, 3, 2}));
  EXPECT_EQ(RankShare(order, 1, 2), (std::vector<size_t>{0, 1}));
  EXPECT_EQ(RankShare(order, 0, 1), order);
  EXPECT_TRUE(RankShare({7}, 1, 2).empty());
}

TEST(dist, RankIsANumberOrAStatefulSetPodsOrdinal) {
  EXPECT_EQ(*ParseRank("3", "any-host"), 3);
  EXPECT_EQ(*ParseRank("hostname", "r1r-learner-0"), 0);
  EXPECT_EQ(*ParseRank("hostname", "r1r-learner-12"), 12);
  EXPECT_EQ(*ParseRank("hostname", "gpu-7"), 7);
  for (const char* name : {"r1r-learner", "r1r-learner-", "learner0", "r1r-learner-x1", "r1r-learner-+1", ""}) {
    const auto rank = ParseRank("hostname", name);
    ASSERT_FALSE(rank.ok()) << name;
    EXPECT_THAT(std::string(rank.status().message()), ::testing::HasSubstr("-<ordinal>")) << name;
  }
  for (const char* value : {"-1", "one", "", "host"}) {
    const auto rank = ParseRank(value, "r1r-learner-1");
    ASSERT_FALSE(rank.ok()) << value;
    EXPECT_THAT(std::string(rank.status().message()), ::testing::HasSubstr("'hostname'")) << value;
  }
}

TEST(dist, BadOptionsAndAMissingPeerAreErrorsNotCrashes) {
  GroupOptions o;
  o.rank = 2;
  o.world_size = 2;
  EXPECT_EQ(Validate(o).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseBackend("mpi").status().code(), absl::StatusCode::kInvalidArgument);
  // Rank 1 alone: rank 0's store never appears, so joining times out with a status.
  o.rank = 1;
  o.master_port = testing::FreeLoopbackPort();
  o.timeout = std::chrono::seconds(2);
  auto group = ProcessGroup::Create(o);
  EXPECT_FALSE(group.ok());
  EXPECT_EQ(group.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace r1r::dist
