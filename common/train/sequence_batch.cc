#include "common/train/sequence_batch.h"

#include <torch/torch.h>

#include <absl/strings/str_cat.h>

namespace r1r::train {

absl::StatusOr<SequenceBatch> BuildSequenceBatch(const std::vector<const EncodedPrompt*>& prompts,
                                                 const std::vector<std::vector<int64_t>>& responses, int64_t pad_id) {
  if (prompts.empty() || prompts.size() != responses.size()) {
    return absl::InvalidArgumentError("BuildSequenceBatch: need as many responses as prompts, at least one");
  }
  const int64_t batch = static_cast<int64_t>(prompts.size());
  int64_t prompt_width = 0, response_width = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i]->ids.empty()) return absl::InvalidArgumentError(absl::StrCat("prompt ", i, " is empty"));
    if (responses[i].empty()) return absl::InvalidArgumentError(absl::StrCat("response ", i, " is empty"));
    prompt_width = std::max<int64_t>(prompt_width, prompts[i]->ids.size());
    response_width = std::max<int64_t>(response_width, responses[i].size());
  }
  const int64_t width = prompt_width + response_width;
  auto ids = torch::full({batch, width}, pad_id, torch::kLong);
  auto mask = torch::zeros({batch, width}, torch::kLong);
  auto response_mask = torch::zeros({batch, response_width}, torch::kFloat);
  auto ids_a = ids.accessor<int64_t, 2>();
  auto mask_a = mask.accessor<int64_t, 2>();
  auto rmask_a = response_mask.accessor<float, 2>();
  std::vector<at::Tensor> pixels, grids;
  for (int64_t b = 0; b < batch; ++b) {
    const auto& p = prompts[b]->ids;
    const int64_t start = prompt_width - static_cast<int64_t>(p.size());
    for (size_t j = 0; j < p.size(); ++j) {
      ids_a[b][start + static_cast<int64_t>(j)] = p[j];
      mask_a[b][start + static_cast<int64_t>(j)] = 1;
    }
    for (size_t j = 0; j < responses[b].size(); ++j) {
      ids_a[b][prompt_width + static_cast<int64_t>(j)] = responses[b][j];
      mask_a[b][prompt_width + static_cast<int64_t>(j)] = 1;
      rmask_a[b][static_cast<int64_t>(j)] = 1.0f;
    }
    if (prompts[b]->pixel_values.defined()) {
      pixels.push_back(prompts[b]->pixel_values);
      grids.push_back(prompts[b]->image_grid_thw);
    }
  }
  SequenceBatch out;
  out.input.input_ids = ids;
  out.input.attention_mask = mask;
  if (!pixels.empty()) {
    out.input.pixel_values = torch::cat(pixels, 0);
    out.input.image_grid_thw = torch::cat(grids, 0);
  }
  out.response_ids = ids.slice(1, prompt_width);
  out.response_mask = response_mask;
  out.prompt_width = prompt_width;
  return out;
}

absl::StatusOr<PackedSequenceBatch> BuildPackedSequenceBatch(const std::vector<const EncodedPrompt*>& prompts,
                                                             const std::vector<std::vector<int64_t>>& targets) {
  if (prompts.empty() || prompts.size() != targets.size()) {
    return absl::InvalidArgumentError("BuildPackedSequenceBatch: need as many targets as prompts, at least one");
  }
  std::vector<int64_t> ids, positions;
  std::vector<model::PackedSegment> segments;
  std::vector<at::Tensor> pixels, grids;
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i]->ids.empty()) return absl::InvalidArgumentError(absl::StrCat("prompt ", i, " is empty"));
    if (targets[i].empty()) return absl::InvalidArgumentError(absl::StrCat("target ", i, " is empty"));
    const auto start = static_cast<int64_t>(ids.size());
    ids.insert(ids.end(), prompts[i]->ids.begin(), prompts[i]->ids.end());
    for (int64_t t : targets[i]) {
      positions.push_back(static_cast<int64_t>(ids.size()));
      ids.push_back(t);
    }
    segments.push_back({0, start, static_cast<int64_t>(ids.size()) - start});
    if (prompts[i]->pixel_values.defined()) {
      pixels.push_back(prompts[i]->pixel_values);
      grids.push_back(prompts[i]->image_grid_thw);
    }
  }
  PackedSequenceBatch out;
  out.tokens = static_cast<int64_t>(ids.size());
  out.input.input_ids = torch::tensor(ids, torch::kLong).view({1, out.tokens});
  out.input.segments = std::move(segments);
  if (!pixels.empty()) {
    out.input.pixel_values = torch::cat(pixels, 0);
    out.input.image_grid_thw = torch::cat(grids, 0);
  }
  out.target_positions = torch::tensor(positions, torch::kLong);
  return out;
}

}  // namespace r1r::train
