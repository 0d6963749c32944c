// Qwen2.5-VL (Qwen2_5_VLForConditionalGeneration) in LibTorch: vision tower + M-RoPE text decoder.
//
// The module tree mirrors Hugging Face's legacy parameter names, so named_parameters() yields exactly
// the checkpoint keys ("model.layers.0.self_attn.q_proj.weight", "visual.blocks.0.attn.qkv.bias", ...),
// and parameters() can be handed to an optimizer. With tied embeddings there is no lm_head module and
// the output projection is model.embed_tokens.weight.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include "absl/status/statusor.h"
#include "common/model/config.h"
#include "common/model/kv_cache.h"

namespace r1r::model {

struct TextModel;
struct VisionModel;
struct LinearParams;

struct ModelOptions {
  at::ScalarType dtype = at::kFloat;  // kFloat or kBFloat16 (kHalf works but is untested)
  at::Device device = at::kCPU;
};

// One sample of a packed row: tokens [start, start + length) of row `row` of input_ids.
struct PackedSegment {
  int64_t row = 0;
  int64_t start = 0;
  int64_t length = 0;
};

struct ForwardInput {
  at::Tensor input_ids;       // [B, L] int64
  at::Tensor attention_mask;  // [B, past + L], 1 = real token, 0 = padding; undefined = all real
  // [3, B, L] int64 M-RoPE positions. Undefined: computed from input_ids/attention_mask/image_grid_thw
  // at prefill (HF get_rope_index), or as past + i + rope_delta when decoding with a cache.
  at::Tensor position_ids;
  at::Tensor pixel_values;    // [num_patches, C*T*P*P] (HF layout); undefined = no images
  at::Tensor image_grid_thw;  // [num_images, 3] int64, images in batch order
  // Prefill when cache->length() == 0; Forward advances it by L. A slot cache (KvCache::EnableSlots,
  // continuous batching) takes one token per active row ([rows, 1], no mask, positions or images).
  KvCache* cache = nullptr;
  // Activation checkpointing of the decoder layers and the vision blocks when grad mode is on: saves
  // memory for a second forward per layer in backward. Parameter gradients then reach .grad only via
  // loss.backward().
  bool checkpoint_layers = false;
  // Packed rows (SFT): several samples per row. Each sample attends causally to itself only, gets its
  // own M-RoPE positions (restarting at 0, unless position_ids are given) and its own images (images in
  // row-major sample order). Tokens outside every segment are padding. Segments of a row must not
  // overlap; no attention_mask or cache with them. Empty: one sequence per row.
  std::vector<PackedSegment> segments;
};

struct ForwardOutput {
  at::Tensor hidden;       // [B, L, hidden_size] after the final norm, model dtype
  at::Tensor rope_deltas;  // [B] int64
};

class Qwen2_5_VL : public torch::nn::Module {
 public:
  // Random initialisation (normal, std 0.02; norms 1), deterministic in `seed` and independent of
  // device and dtype. Load real weights with LoadWeights / LoadPretrained (weights.h).
  static absl::StatusOr<std::shared_ptr<Qwen2_5_VL>> Create(const ModelConfig& config, const ModelOptions& options,
                                                             uint64_t seed = 0);
  // Parameters allocated on the target device/dtype but not initialised: for LoadWeights.
  static absl::StatusOr<std::shared_ptr<Qwen2_5_VL>> CreateUninitialized(const ModelConfig& config,
                                                                          const ModelOptions& options);

  const ModelConfig& config() const { return config_; }
  // Current dtype/device of the parameters (follows torch::nn::Module::to()).
  ModelOptions options() const;

  absl::StatusOr<ForwardOutput> Forward(const ForwardInput& input);

  // One decode step of a slot cache (KvCache::EnableSlots) without checks or host synchronisation: ids
  // [cache.batch(), 1] int64 on the model's device, already in the vocabulary; writes each row's new
  // entry at its length and returns the last hidden states [cache.batch(), hidden_size]. The cache's
  // lengths are not advanced (Advance(1) afterwards). This is the part a CUDA graph captures.
  at::Tensor DecodeSlots(KvCache& cache, const at::Tensor& ids) const;

  // Logits (float32) of hidden states [..., hidden_size] -> [..., vocab]. Holds the full vocab row per
  // position: for long sequences use ComputeTokenLogProbs (logprobs.h).
  at::Tensor ComputeLogits(const at::Tensor& hidden) const;
  // The output projection [vocab, hidden]: lm_head.weight, or embed_tokens.weight when tied.
  at::Tensor output_weight() const;

  // Vision tower: [num_image_tokens, out_hidden_size] for pixel_values/grid_thw in HF layout.
  // checkpoint_blocks: activation checkpointing of the vision blocks (when grad mode is on).
  absl::StatusOr<at::Tensor> EncodeImages(const at::Tensor& pixel_values, const at::Tensor& image_grid_thw,
                                          bool checkpoint_blocks = false);

  // HF get_rope_index over a padded batch: position ids [3, B, L] (padding slots get 1) and rope
  // deltas [B], both int64 on CPU.
  absl::StatusOr<std::pair<at::Tensor, at::Tensor>> ComputePositionIds(const at::Tensor& input_ids,
                                                                       const at::Tensor& attention_mask,
                                                                       const at::Tensor& image_grid_thw) const;

  // Submodules (for weight IO and tests).
  TextModel& text() { return *text_; }
  VisionModel& vision() { return *vision_; }

 private:
  Qwen2_5_VL(const ModelConfig& config, const ModelOptions& options, uint64_t seed, bool random_init);
  static absl::StatusOr<std::shared_ptr<Qwen2_5_VL>> CreateImpl(const ModelConfig& config, const ModelOptions& options,
                                                                uint64_t seed, bool random_init);

  at::Tensor DecodeSlots(const at::Tensor& embeds, KvCache& cache) const;
  // Forward of packed rows (input.segments) once the embeddings hold the images.
  absl::StatusOr<ForwardOutput> ForwardPacked(const ForwardInput& input, const at::Tensor& ids, const at::Tensor& embeds);

  ModelConfig config_;
  std::shared_ptr<TextModel> text_;
  std::shared_ptr<VisionModel> vision_;
  std::shared_ptr<LinearParams> lm_head_;  // null when tied
};

}  // namespace r1r::model
