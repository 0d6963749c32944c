// Internal module tree of Qwen2.5-VL (included only by common/model .cc files).
//
// Each struct registers its tensors under the Hugging Face names, so the dotted path of every
// parameter equals its checkpoint key. Layer lists are plain modules whose children are named
// "0", "1", ... because torch::nn::Module forbids dots in names but not digits.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include "common/model/config.h"
#include "common/model/kv_cache.h"

namespace r1r::model {

// Everything is created in float32 on the CPU from one generator, then cast: the same seed gives
// the same model on every device and dtype.
// When `random` is false the tensors are only allocated (for loading a checkpoint without paying
// for, or holding a float32 copy of, a random initialisation). Each tensor is moved to its final
// device/dtype right away, so the peak extra memory is one tensor.
struct ParamInit {
  at::Generator generator;
  bool random = true;
  at::TensorOptions options;
  at::Tensor Normal(at::IntArrayRef shape, double std = 0.02);
  at::Tensor Ones(at::IntArrayRef shape);
};

struct LinearParams : torch::nn::Module {
  LinearParams(int64_t in, int64_t out, bool bias, ParamInit& init);
  at::Tensor Forward(const at::Tensor& x) const;
  at::Tensor weight;
  at::Tensor bias;  // undefined when the layer has none
};

struct RmsNormParams : torch::nn::Module {
  RmsNormParams(int64_t dim, double eps, ParamInit& init);
  // HF Qwen2RMSNorm: normalise in float32, cast back to the input dtype, then scale.
  at::Tensor Forward(const at::Tensor& x) const;
  at::Tensor weight;
  double eps;
};

struct EmbeddingParams : torch::nn::Module {
  EmbeddingParams(int64_t vocab, int64_t dim, ParamInit& init);
  at::Tensor weight;
};

// softmax(q k^T / sqrt(d)) v over [..., L, d] tensors with float32 softmax. `allowed` (bool,
// broadcastable to [..., Lq, Lk]) may be undefined for unmasked attention. Uses LibTorch's fused
// scaled_dot_product_attention when the build has it (>= 2.0), the explicit matmuls otherwise.
at::Tensor ScaledDotProductAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                     const at::Tensor& allowed);

// ---- text decoder ----

struct TextAttention : torch::nn::Module {
  TextAttention(const TextConfig& c, ParamInit& init);
  std::shared_ptr<LinearParams> q_proj, k_proj, v_proj, o_proj;
};

struct GatedMlp : torch::nn::Module {  // SwiGLU: down(silu(gate(x)) * up(x))
  GatedMlp(int64_t dim, int64_t inner, bool bias, ParamInit& init);
  at::Tensor Forward(const at::Tensor& x) const;
  std::shared_ptr<LinearParams> gate_proj, up_proj, down_proj;
};

struct TextLayer : torch::nn::Module {
  TextLayer(const TextConfig& c, ParamInit& init);
  std::shared_ptr<RmsNormParams> input_layernorm, post_attention_layernorm;
  std::shared_ptr<TextAttention> self_attn;
  std::shared_ptr<GatedMlp> mlp;
};

// Rotary tables for one forward: [B, 1, L, head_dim] in the activation dtype.
struct RotaryTables {
  at::Tensor cos;
  at::Tensor sin;
};

// Which keys each query of the decoder sees, decided once per forward and shared by every layer.
struct AttentionLayout {
  // Bool [B or 1, 1, L, past + L]; undefined: causal (query i sees keys [0, past + i]), no mask built.
  at::Tensor allowed;
  // Packed rows: int64 [n, 3] on the CPU, (row, start, length) per sample, tiling every row in order;
  // each sample attends causally within itself only (one causal attention per sample, no L x L mask).
  // Undefined: one sequence per row. Excludes `allowed` and a KV cache.
  at::Tensor segments;
};

struct TextModel : torch::nn::Module {  // HF name "model"
  TextModel(const TextConfig& c, ParamInit& init);
  // M-RoPE tables for position ids [3, B, L].
  RotaryTables Rotary(const at::Tensor& position_ids, at::ScalarType dtype) const;
  // Runs the decoder over embeddings [B, L, H] with the given attention layout.
  // checkpoint_layers: keep only layer inputs and recompute each layer in backward (training).
  at::Tensor Forward(const at::Tensor& embeds, const RotaryTables& rotary, const AttentionLayout& layout,
                     KvCache* cache, bool checkpoint_layers = false) const;

  TextConfig config;
  std::shared_ptr<EmbeddingParams> embed_tokens;
  // Inverse frequencies [D/2] (float32) and the M-RoPE stream of each frequency [D/2] (int64) on the
  // device of the last Rotary call: kept so a decode step copies nothing from the host (a CUDA graph
  // capture cannot hold a host-to-device copy).
  mutable std::mutex rotary_mu;
  mutable at::Tensor rotary_inv_freq, rotary_stream_of_freq;
  std::shared_ptr<torch::nn::Module> layers_holder;
  std::vector<std::shared_ptr<TextLayer>> layers;
  std::shared_ptr<RmsNormParams> norm;
};

// ---- vision tower ----

struct VisionAttention : torch::nn::Module {
  VisionAttention(const VisionConfig& c, ParamInit& init);
  std::shared_ptr<LinearParams> qkv, proj;
};

struct VisionBlock : torch::nn::Module {
  VisionBlock(const VisionConfig& c, ParamInit& init);
  std::shared_ptr<RmsNormParams> norm1, norm2;
  std::shared_ptr<VisionAttention> attn;
  std::shared_ptr<GatedMlp> mlp;
};

struct PatchEmbed : torch::nn::Module {
  PatchEmbed(const VisionConfig& c, ParamInit& init);
  // Conv3d weight [hidden, C, T, P, P]; kernel == stride, so it is applied as one matmul.
  std::shared_ptr<torch::nn::Module> proj_holder;
  at::Tensor weight;
};

struct PatchMerger : torch::nn::Module {
  PatchMerger(const VisionConfig& c, ParamInit& init);
  std::shared_ptr<RmsNormParams> ln_q;
  std::shared_ptr<torch::nn::Module> mlp_holder;
  std::shared_ptr<LinearParams> fc1, fc2;  // HF "mlp.0" and "mlp.2" (mlp.1 is the GELU)
};

struct VisionModel : torch::nn::Module {  // HF name "visual"
  VisionModel(const VisionConfig& c, ParamInit& init);
  // pixel_values [Np, patch_dim] in any float dtype; grids in image order. Returns merged tokens
  // [sum(t*h*w)/merge^2, out_hidden] in raster order of the merged cells.
  // checkpoint_blocks: keep only block inputs and recompute each block in backward (training).
  at::Tensor Forward(const at::Tensor& pixel_values, const std::vector<std::array<int64_t, 3>>& grids,
                     bool checkpoint_blocks = false) const;

  VisionConfig config;
  std::shared_ptr<PatchEmbed> patch_embed;
  std::shared_ptr<torch::nn::Module> blocks_holder;
  std::vector<std::shared_ptr<VisionBlock>> blocks;
  std::shared_ptr<PatchMerger> merger;
};

}  // namespace r1r::model
