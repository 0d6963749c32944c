// SFT sequence packing: several samples in one row (block-diagonal causal attention, per-sample
// positions and images) give the loss and the gradients of the samples trained unpacked (float64
// model; the tolerances are float32 rounding, see below).
#include <torch/torch.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/train/sequence_batch.h"
#include "common/train/trainer.h"
#include "tests/unit/train/tiny_world.h"

namespace r1r::train {
namespace {

using testing::MakeSftItems;
using testing::World;

std::unique_ptr<Policy> LoadFloat64Policy() {
  auto p = Policy::Load(World().model_dir, model::ModelOptions{at::kDouble, at::kCPU});
  EXPECT_TRUE(p.ok()) << p.status();
  return std::move(*p);
}

OptimizerOptions Sgdish() {
  OptimizerOptions o;
  o.lr = 1e-3;
  o.warmup_ratio = 0;
  o.min_lr_ratio = 1.0;
  o.grad_clip = 1e9;  // compare raw gradients
  return o;
}

double MaxWeightDifference(Policy& a, Policy& b) {
  auto pa = a.model().parameters(), pb = b.model().parameters();
  double worst = 0;
  for (size_t i = 0; i < pa.size(); ++i) worst = std::max(worst, (pa[i] - pb[i]).abs().max().item<double>());
  return worst;
}

int64_t TotalTokens(const std::vector<SftItem>& items) {
  int64_t n = 0;
  for (const auto& it : items) n += static_cast<int64_t>(it.prompt.ids.size() + it.target_ids.size());
  return n;
}

TEST(train, PackedSftStepEqualsTheSamplesUnpackedInFloat64) {
  auto unpacked = LoadFloat64Policy();
  auto packed = LoadFloat64Policy();
  const auto items = MakeSftItems(*unpacked, 0, 5);  // each with its own image
  OptimizerOptions alone = Sgdish();
  alone.micro_batch = 1;  // every sample alone: no padding, no packing
  OptimizerOptions pack = Sgdish();
  pack.pack_sequences = true;
  // Two rows: samples 0-3 packed together, sample 4 alone (the gradients accumulate over both).
  pack.micro_batch_tokens =
      TotalTokens(items) - static_cast<int64_t>(items[4].prompt.ids.size() + items[4].target_ids.size());
  pack.gradient_checkpointing = true;  // the segments also travel through the recomputed layers
  Trainer ta(unpacked.get(), nullptr, alone), tb(packed.get(), nullptr, pack);
  auto ra = ta.SftStep(items);
  auto rb = tb.SftStep(items);
  ASSERT_TRUE(ra.ok()) << ra.status();
  ASSERT_TRUE(rb.ok()) << rb.status();
  // Float32 rounding, not 1e-12: even a float64 model takes attention's softmax and the log-probs in
  // float32 (as HF does), so the float64 matmuls' different blocking over a longer row can flip a
  // float32 ulp. A sample that attends to its neighbour moves the loss by 4e-5 and the norm by 2e-4.
  EXPECT_NEAR(rb->loss, ra->loss, 1e-6 * std::abs(ra->loss));
  EXPECT_NEAR(rb->grad_norm, ra->grad_norm, 1e-7 * ra->grad_norm);
  // One AdamW step from the same state with the same gradients: the same weights.
  EXPECT_LT(MaxWeightDifference(*unpacked, *packed), 1e-6);
  EXPECT_EQ(rb->metrics.at("forward_tokens"), static_cast<double>(TotalTokens(items)));  // no padding
}

TEST(train, PackedSftStepMatchesPaddedMicroBatchesWithLessPadding) {
  auto padded = LoadFloat64Policy();
  auto packed = LoadFloat64Policy();
  const auto items = MakeSftItems(*padded, 0, 6);
  OptimizerOptions pad = Sgdish();
  pad.micro_batch = 3;
  OptimizerOptions pack = pad;
  pack.pack_sequences = true;  // micro_batch_tokens 0: micro_batch samples per row
  Trainer ta(padded.get(), nullptr, pad), tb(packed.get(), nullptr, pack);
  auto ra = ta.SftStep(items);
  auto rb = tb.SftStep(items);
  ASSERT_TRUE(ra.ok()) << ra.status();
  ASSERT_TRUE(rb.ok()) << rb.status();
  // A few float32 ulps, not 1e-12: attention's softmax and the log-probs are float32 even in a float64
  // model, and a padded row sums its longer key range in another order (a sample that saw a
  // neighbour would be off by > 1e-3).
  EXPECT_NEAR(rb->loss, ra->loss, 1e-6 * std::abs(ra->loss));
  EXPECT_NEAR(rb->grad_norm, ra->grad_norm, 1e-6 * ra->grad_norm);
  EXPECT_EQ(rb->metrics.at("forward_tokens"), static_cast<double>(TotalTokens(items)));
  EXPECT_GT(ra->metrics.at("forward_tokens"), rb->metrics.at("forward_tokens"));
}

TEST(train, PackedBatchPlacesEveryTargetAfterItsOwnPrompt) {
  EncodedPrompt a{{5, 6, 7}, {}, {}}, b{{8, 9}, {}, {}};
  auto batch = BuildPackedSequenceBatch({&a, &b}, {{10, 11}, {12}});
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_EQ(batch->tokens, 8);
  EXPECT_TRUE(batch->input.input_ids.equal(torch::tensor({5, 6, 7, 10, 11, 8, 9, 12}, torch::kLong).view({1, 8})));
  EXPECT_TRUE(batch->target_positions.equal(torch::tensor({3, 4, 7}, torch::kLong)));
  ASSERT_EQ(batch->input.segments.size(), 2u);
  EXPECT_EQ(batch->input.segments[1].start, 5);
  EXPECT_EQ(batch->input.segments[1].length, 3);
  auto empty = BuildPackedSequenceBatch({&a, &b}, {{10}, {}});
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(std::string(empty.status().message()), ::testing::HasSubstr("target 1"));
}

}  // namespace
}  // namespace r1r::train
