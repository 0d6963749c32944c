// Attention without a dense mask per layer: packed rows (one causal attention per sample) and padded
// rows rotated so causal attention needs no mask must give each sample exactly what it gets alone.
#include <torch/torch.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/model/test_util.h"

namespace r1r::model {
namespace {

using testing::Grid;
using testing::Ids;
using testing::MakeTinyModel;
using testing::PromptWithImage;
using testing::RandomPixels;
using testing::TextPrompt;

// In float64 (test_util's MaxAbsDiff rounds to float32 first, which turns 1e-16 into one float ulp).
double MaxAbsDiff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

struct Sample {
  std::vector<int64_t> ids;
  at::Tensor pixels;  // undefined: text only
  at::Tensor grid;
};

std::vector<Sample> Samples(const ModelConfig& c) {
  return {{PromptWithImage(c, 8, 12, 2, 3), RandomPixels(c, 8, 12, 5), Grid(8, 12)},
          {TextPrompt(9), at::Tensor(), at::Tensor()},
          {PromptWithImage(c, 4, 4, 1, 1), RandomPixels(c, 4, 4, 6), Grid(4, 4)},
          {TextPrompt(5, 11), at::Tensor(), at::Tensor()}};
}

// Hidden states [n, H] of one sample run alone (no padding, no packing), differentiable.
at::Tensor Alone(Qwen2_5_VL& model, const Sample& s) {
  ForwardInput in;
  in.input_ids = Ids(s.ids);
  in.pixel_values = s.pixels;
  in.image_grid_thw = s.grid;
  auto out = model.Forward(in);
  EXPECT_TRUE(out.ok()) << out.status();
  return out->hidden[0];
}

void AddImages(ForwardInput& in, const std::vector<const Sample*>& order) {
  std::vector<at::Tensor> pixels, grids;
  for (const Sample* s : order) {
    if (!s->pixels.defined()) continue;
    pixels.push_back(s->pixels);
    grids.push_back(s->grid);
  }
  if (pixels.empty()) return;
  in.pixel_values = torch::cat(pixels, 0);
  in.image_grid_thw = torch::cat(grids, 0);
}

// Weights of a scalar read-out of the hidden states, so gradients cover every position.
at::Tensor ReadOut(int64_t n, int64_t H) {
  return torch::linspace(-1.0, 1.0, n * H, torch::kDouble).view({n, H});
}

TEST(model, PackedRowsEqualTheirSamplesAlone) {
  auto model = MakeTinyModel({}, at::kDouble);
  const ModelConfig& c = model->config();
  const std::vector<Sample> samples = Samples(c);
  // Row 0 packs samples 0, 1, 2 back to back; row 1 holds sample 3 after two padding columns and
  // before a padding tail (gaps are padding).
  const int64_t n0 = samples[0].ids.size(), n1 = samples[1].ids.size(), n2 = samples[2].ids.size();
  const int64_t n3 = samples[3].ids.size();
  const int64_t L = n0 + n1 + n2;
  at::Tensor ids = torch::zeros({2, L}, torch::kLong);
  std::vector<PackedSegment> segments = {{0, 0, n0}, {0, n0, n1}, {0, n0 + n1, n2}, {1, 2, n3}};
  for (size_t i = 0; i < segments.size(); ++i) {
    ids[segments[i].row].narrow(0, segments[i].start, segments[i].length).copy_(torch::tensor(samples[i].ids));
  }
  ForwardInput packed;
  packed.input_ids = ids;
  packed.segments = segments;
  packed.checkpoint_layers = true;  // the checkpointed layers carry the segments into backward too
  AddImages(packed, {&samples[0], &samples[1], &samples[2], &samples[3]});
  auto out = model->Forward(packed);
  ASSERT_TRUE(out.ok()) << out.status();
  const int64_t H = c.text.hidden_size;
  at::Tensor packed_sum = torch::zeros({}, torch::kDouble);
  at::Tensor alone_sum = torch::zeros({}, torch::kDouble);
  for (size_t i = 0; i < segments.size(); ++i) {
    const PackedSegment& s = segments[i];
    at::Tensor mine = out->hidden[s.row].narrow(0, s.start, s.length);
    at::Tensor alone = Alone(*model, samples[i]);
    EXPECT_LT(MaxAbsDiff(mine, alone), 1e-10) << "sample " << i;
    packed_sum = packed_sum + (mine * ReadOut(s.length, H)).sum();
    alone_sum = alone_sum + (alone * ReadOut(s.length, H)).sum();
  }
  // Same gradients for every parameter (vision tower included: each sample keeps its own image).
  packed_sum.backward();
  std::vector<at::Tensor> packed_grads;
  for (const auto& p : model->parameters()) {
    packed_grads.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
    if (p.grad().defined()) p.mutable_grad().zero_();
  }
  alone_sum.backward();
  double worst = 0;
  size_t i = 0;
  for (const auto& p : model->parameters()) {
    worst = std::max(worst, MaxAbsDiff(packed_grads[i++], p.grad().defined() ? p.grad() : torch::zeros_like(p)));
  }
  EXPECT_LT(worst, 1e-10);
}

TEST(model, PaddedRowsWithContiguousTokensMatchAloneWithoutAMask) {
  // Left- and right-padded rows (the layout of SequenceBatch: prompts left-padded, responses
  // right-padded) are rotated to need no mask; a row with a hole still takes the dense mask.
  torch::NoGradGuard no_grad;
  auto model = MakeTinyModel({}, at::kDouble);
  const ModelConfig& c = model->config();
  const std::vector<Sample> samples = Samples(c);
  const int64_t L = static_cast<int64_t>(samples[0].ids.size()) + 4;
  const std::vector<int64_t> offsets = {1, 0, 3, 4};  // row b's tokens start at offsets[b]
  at::Tensor ids = torch::zeros({4, L}, torch::kLong);
  at::Tensor mask = torch::zeros({4, L}, torch::kLong);
  for (int64_t b = 0; b < 4; ++b) {
    const int64_t n = static_cast<int64_t>(samples[b].ids.size());
    ids[b].narrow(0, offsets[b], n).copy_(torch::tensor(samples[b].ids));
    mask[b].narrow(0, offsets[b], n).fill_(1);
  }
  ForwardInput batch;
  batch.input_ids = ids;
  batch.attention_mask = mask;
  AddImages(batch, {&samples[0], &samples[1], &samples[2], &samples[3]});
  auto out = model->Forward(batch);
  ASSERT_TRUE(out.ok()) << out.status();
  // 1e-6, not 1e-10: softmax and RMSNorm run in float32 even in a float64 model, and their sums
  // round differently over rows of other lengths (a wrong key or position costs > 1e-2).
  for (int64_t b = 0; b < 4; ++b) {
    const int64_t n = static_cast<int64_t>(samples[b].ids.size());
    EXPECT_LT(MaxAbsDiff(out->hidden[b].narrow(0, offsets[b], n), Alone(*model, samples[b])), 1e-6) << "row " << b;
  }
  // A padding hole inside row 1 (its token 4 masked out): the masked path, same as before.
  at::Tensor holed = mask.clone();
  holed[1][4] = 0;
  batch.attention_mask = holed;
  auto with_hole = model->Forward(batch);
  ASSERT_TRUE(with_hole.ok()) << with_hole.status();
  EXPECT_LT(MaxAbsDiff(with_hole->hidden[0].narrow(0, 1, samples[0].ids.size()), Alone(*model, samples[0])), 1e-6);
  EXPECT_GT(MaxAbsDiff(with_hole->hidden[1].narrow(0, 5, 4), out->hidden[1].narrow(0, 5, 4)), 1e-6);  // the hole counts
}

TEST(model, BadSegmentsAreErrorsNamingThem) {
  torch::NoGradGuard no_grad;
  auto model = MakeTinyModel();
  ForwardInput in;
  in.input_ids = Ids(TextPrompt(10));
  in.segments = {{0, 0, 6}, {0, 8, 4}};  // past the row's end
  auto out = model->Forward(in);
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(std::string(out.status().message()), ::testing::HasSubstr("segments[1]"));
  in.segments = {{0, 0, 6}, {0, 5, 4}};
  out = model->Forward(in);
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(std::string(out.status().message()), ::testing::HasSubstr("overlap in row 0"));
  in.segments = {{0, 0, 6}};
  in.attention_mask = torch::ones({1, 10}, torch::kLong);
  out = model->Forward(in);
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(std::string(out.status().message()), ::testing::HasSubstr("attention_mask"));
}

}  // namespace
}  // namespace r1r::model
