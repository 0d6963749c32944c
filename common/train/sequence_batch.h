// Padded [prompt | response] batches for scoring and training: prompts are left-padded to a common
// width P and responses right-padded to R, so every response starts at column P and the per-token
// log-probs come out as one [B, R] block.
#pragma once

#include <vector>

#include <ATen/core/Tensor.h>
#include <absl/status/statusor.h>

#include "common/model/model.h"
#include "common/train/prompt_encoder.h"

namespace r1r::train {

struct SequenceBatch {
  model::ForwardInput input;  // input_ids [B, P + R], attention_mask, pixel_values, image_grid_thw
  at::Tensor response_ids;    // [B, R] int64 (pad where masked)
  at::Tensor response_mask;   // [B, R] float32, 1 = real response token
  int64_t prompt_width = 0;   // P
};

// `responses[i]` must hold at least one token.
absl::StatusOr<SequenceBatch> BuildSequenceBatch(const std::vector<const EncodedPrompt*>& prompts,
                                                 const std::vector<std::vector<int64_t>>& responses, int64_t pad_id);

// Several [prompt | target] samples back to back in one row, no padding (SFT sequence packing): each
// sample attends only to itself and gets its own M-RoPE positions and images (ForwardInput.segments),
// so its target log-probs equal those of the padded batch.
struct PackedSequenceBatch {
  model::ForwardInput input;    // input_ids [1, T], segments, pixel_values, image_grid_thw
  at::Tensor target_positions;  // [N] int64 columns of the target tokens, in sample order
  int64_t tokens = 0;           // T
};

// `targets[i]` must hold at least one token.
absl::StatusOr<PackedSequenceBatch> BuildPackedSequenceBatch(const std::vector<const EncodedPrompt*>& prompts,
                                                             const std::vector<std::vector<int64_t>>& targets);

}  // namespace r1r::train
