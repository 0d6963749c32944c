// ZeRO-2's gradient reduction overlapped with the backward pass (GradBucketReducer) sums what the
// synchronous reduce-scatter after the backward sums: two Gloo ranks (threads of this process), many
// small buckets or the default ones, several micro-batches accumulated per step (the ranks have 3 and 2,
// the second adds an empty one), fp32 and bf16 gradients, activation checkpointing, and two backward
// passes before one accumulation (gradients that arrive after their bucket left go the synchronous way).
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <functional>

#include <gtest/gtest.h>

#include "common/dist/process_group.h"
#include "common/train/optimizer.h"
#include "common/train/sequence_batch.h"
#include "tests/unit/dist/gloo_ranks.h"
#include "tests/unit/train/tiny_world.h"

namespace r1r::train {
namespace {

using testing::MakeSftItems;
using testing::World;

struct Case {
  int64_t bucket_bytes = 32 << 20;
  at::ScalarType dtype = at::kFloat;
  bool checkpointing = false;
  int backwards_per_accumulate = 1;  // 2: two backward passes, then one AccumulateGradients
};

struct Result {
  std::vector<double> norms;  // global gradient norm of each step
  std::vector<at::Tensor> weights;
  int64_t buckets = 0;
};

std::unique_ptr<Policy> Load(at::ScalarType dtype) {
  model::ModelOptions o;
  o.dtype = dtype;
  auto p = Policy::Load(World().model_dir, o);
  EXPECT_TRUE(p.ok()) << p.status();
  return std::move(*p);
}

// Three ZeRO-2 steps of one rank: items rank, rank + 2, rank + 4 of 5, one per micro-batch.
Result Train(const Case& c, bool overlap, int rank, dist::ProcessGroup* group) {
  Result out;
  auto policy = Load(c.dtype);
  policy->set_gradient_checkpointing(c.checkpointing);
  policy->model().train();
  ShardedAdamWOptions o;
  o.zero_stage = 2;
  o.bucket_bytes = c.bucket_bytes;
  o.overlap_grad_reduce = overlap;
  auto made = ShardedAdamW::Create(policy->model().parameters(), o, group);
  EXPECT_TRUE(made.ok()) << made.status();
  if (!made.ok()) return out;
  ShardedAdamW& opt = **made;
  const auto items = MakeSftItems(*policy, 0, 5);
  double tokens = 0;
  for (const auto& it : items) tokens += static_cast<double>(it.target_ids.size());
  for (int step = 0; step < 3; ++step) {
    opt.ZeroGrad();
    int backwards = 0, accumulates = 0;
    for (size_t i = static_cast<size_t>(rank); i < items.size(); i += 2) {
      auto batch = BuildSequenceBatch({&items[i].prompt}, {items[i].target_ids}, policy->pad_id());
      EXPECT_TRUE(batch.ok()) << batch.status();
      auto logp = policy->ResponseLogProbs(*batch);
      EXPECT_TRUE(logp.ok()) << logp.status();
      (-(*logp * batch->response_mask).sum() / tokens).backward();
      if (++backwards % c.backwards_per_accumulate == 0) {
        EXPECT_TRUE(opt.AccumulateGradients().ok());
        ++accumulates;
      }
    }
    if (backwards % c.backwards_per_accumulate != 0) {
      EXPECT_TRUE(opt.AccumulateGradients().ok());
      ++accumulates;
    }
    // Every rank accumulates as often as the busiest (rank 0 has 3 items, rank 1 has 2).
    const int most = c.backwards_per_accumulate == 1 ? 3 : 2;
    for (; accumulates < most; ++accumulates) EXPECT_TRUE(opt.AccumulateGradients().ok());
    auto norm = opt.ReduceGradients();
    EXPECT_TRUE(norm.ok()) << norm.status();
    if (!norm.ok()) return out;
    out.norms.push_back(*norm);
    const absl::Status stepped = opt.Step(1e-3, std::min(1.0, 1.0 / (*norm + 1e-6)));
    EXPECT_TRUE(stepped.ok()) << stepped;
  }
  for (const auto& p : policy->model().parameters()) out.weights.push_back(p.detach().to(torch::kFloat).clone());
  return out;
}

// Runs body(rank, group) on two Gloo ranks; false when this build has no Gloo.
bool OnTwoRanks(std::chrono::milliseconds timeout, const std::function<void(int, dist::ProcessGroup*)>& body) {
  return dist::testing::OnGlooRanks(2, timeout, body);
}

bool OnTwoRanks(const Case& c, bool overlap, std::vector<Result>& results) {
  results.assign(2, Result{});
  return OnTwoRanks(std::chrono::seconds(120), [&](int rank, dist::ProcessGroup* group) {
    results[static_cast<size_t>(rank)] = Train(c, overlap, rank, group);
  });
}

void ExpectOverlapMatchesSynchronous(const Case& c, double tolerance) {
  std::vector<Result> sync, overlapped;
  if (!OnTwoRanks(c, /*overlap=*/false, sync) || !OnTwoRanks(c, /*overlap=*/true, overlapped)) {
    GTEST_SKIP() << "this build has no Gloo backend";
  }
  for (int rank = 0; rank < 2; ++rank) {
    const Result& a = sync[static_cast<size_t>(rank)];
    const Result& b = overlapped[static_cast<size_t>(rank)];
    ASSERT_EQ(a.norms.size(), 3u);
    ASSERT_EQ(b.norms.size(), 3u);
    for (size_t s = 0; s < 3; ++s) EXPECT_NEAR(b.norms[s], a.norms[s], tolerance * a.norms[s]) << "rank " << rank << " step " << s;
    ASSERT_EQ(a.weights.size(), b.weights.size());
    double drift = 0;
    for (size_t i = 0; i < a.weights.size(); ++i) drift = std::max(drift, (a.weights[i] - b.weights[i]).abs().max().item<double>());
    EXPECT_LE(drift, tolerance) << "rank " << rank;
  }
  // The steps moved the weights: equal results are not equal because nothing happened.
  auto start = Load(c.dtype);
  double moved = 0;
  const auto params = start->model().parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    moved = std::max(moved, (params[i].detach().to(torch::kFloat) - sync[0].weights[i]).abs().max().item<double>());
  }
  EXPECT_GT(moved, 1e-4);
}

TEST(dist, ZeroTwoOverlappedReductionEqualsTheSynchronousOneWithManyBuckets) {
  ExpectOverlapMatchesSynchronous(Case{.bucket_bytes = 16 << 10}, 1e-6);
}

TEST(dist, ZeroTwoOverlappedReductionEqualsTheSynchronousOneWithDefaultBucketsAndCheckpointing) {
  ExpectOverlapMatchesSynchronous(Case{.checkpointing = true}, 1e-6);
}

TEST(dist, ZeroTwoOverlappedReductionEqualsTheSynchronousOneInBf16) {
  ExpectOverlapMatchesSynchronous(Case{.bucket_bytes = 16 << 10, .dtype = at::kBFloat16}, 1e-6);
}

TEST(dist, ZeroTwoGradientsArrivingAfterTheirBucketLeftTakeTheSynchronousPath) {
  ExpectOverlapMatchesSynchronous(Case{.bucket_bytes = 16 << 10, .backwards_per_accumulate = 2}, 1e-6);
}

}  // namespace
}  // namespace r1r::train

namespace r1r::train {
namespace {

// A rank that leaves while the other's buckets are in flight fails that rank's step with an error
// within the collective timeout (not a hang, not a crash in the autograd hook).
TEST(dist, ZeroTwoRankLeavingDuringTheOverlappedReductionFailsTheOtherWithinTheTimeout) {
  const auto timeout = std::chrono::seconds(5);
  absl::Status accumulated;
  double seconds = 0;
  if (!OnTwoRanks(timeout, [&](int rank, dist::ProcessGroup* group) {
        auto policy = Load(at::kFloat);
        policy->model().train();
        ShardedAdamWOptions o;
        o.zero_stage = 2;
        auto opt = ShardedAdamW::Create(policy->model().parameters(), o, group);
        ASSERT_TRUE(opt.ok()) << opt.status();
        if (rank == 1) return;  // leaves: its group closes its connections
        const auto items = MakeSftItems(*policy, 0, 1);
        auto batch = BuildSequenceBatch({&items[0].prompt}, {items[0].target_ids}, policy->pad_id());
        ASSERT_TRUE(batch.ok());
        auto logp = policy->ResponseLogProbs(*batch);
        ASSERT_TRUE(logp.ok());
        const auto start = std::chrono::steady_clock::now();
        (-(*logp * batch->response_mask).sum()).backward();  // starts the buckets
        accumulated = (*opt)->AccumulateGradients();
        seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      })) {
    GTEST_SKIP() << "this build has no Gloo backend";
  }
  EXPECT_FALSE(accumulated.ok());
  EXPECT_NE(accumulated.message().find("dist:"), std::string::npos) << accumulated;
  EXPECT_LT(seconds, 3 * 5.0) << "the collective timeout is 5 s";
}

}  // namespace
}  // namespace r1r::train
