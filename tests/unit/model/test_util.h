// Helpers shared by the model tests: tiny models and prompts with images.
#pragma once

#include <memory>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "common/model/config.h"
#include "common/model/model.h"
#include "gtest/gtest.h"

namespace r1r::model::testing {

inline std::shared_ptr<Qwen2_5_VL> MakeTinyModel(const TinyConfigOptions& o = {},
                                                 at::ScalarType dtype = at::kFloat, uint64_t seed = 7) {
  auto model = Qwen2_5_VL::Create(MakeTinyConfig(o), ModelOptions{dtype, at::kCPU}, seed);
  EXPECT_TRUE(model.ok()) << model.status();
  return *model;
}

// A prompt: some text, <|vision_start|>, t*h*w/4 <|image_pad|>, <|vision_end|>, more text.
inline std::vector<int64_t> PromptWithImage(const ModelConfig& c, int64_t grid_h, int64_t grid_w, int64_t text_before,
                                            int64_t text_after, int64_t first_id = 3) {
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < text_before; ++i) ids.push_back(first_id + i);
  ids.push_back(c.vision_start_token_id);
  for (int64_t i = 0; i < grid_h * grid_w / 4; ++i) ids.push_back(c.image_token_id);
  ids.push_back(c.vision_end_token_id);
  for (int64_t i = 0; i < text_after; ++i) ids.push_back(first_id + 50 + i);
  return ids;
}

inline std::vector<int64_t> TextPrompt(int64_t n, int64_t first_id = 5) {
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < n; ++i) ids.push_back((first_id + 7 * i) % 400 + 1);
  return ids;
}

inline at::Tensor RandomPixels(const ModelConfig& c, int64_t grid_h, int64_t grid_w, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return torch::empty({grid_h * grid_w, c.vision.patch_dim()}, torch::kFloat).normal_(0.0, 1.0, gen);
}

inline at::Tensor Grid(int64_t h, int64_t w) { return torch::tensor({int64_t{1}, h, w}, torch::kLong).view({1, 3}); }

inline at::Tensor Ids(const std::vector<int64_t>& ids) {
  return torch::tensor(ids, torch::kLong).view({1, static_cast<int64_t>(ids.size())});
}

inline double MaxAbsDiff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(torch::kFloat) - b.to(torch::kFloat)).abs().max().item<double>();
}

}  // namespace r1r::model::testing
