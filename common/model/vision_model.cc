// Qwen2.5-VL vision tower: patch embedding, 2-D rotary, window/full attention blocks, patch merger.
#include <torch/torch.h>

#include <map>

#include "common/model/modules.h"
#include "common/model/positions.h"

namespace r1r::model {

constexpr double kVisionNormEps = 1e-6;  // hard-coded in HF for the ViT blocks and the merger

VisionAttention::VisionAttention(const VisionConfig& c, ParamInit& init) {
  qkv = register_module("qkv", std::make_shared<LinearParams>(c.hidden_size, 3 * c.hidden_size, true, init));
  proj = register_module("proj", std::make_shared<LinearParams>(c.hidden_size, c.hidden_size, true, init));
}

VisionBlock::VisionBlock(const VisionConfig& c, ParamInit& init) {
  norm1 = register_module("norm1", std::make_shared<RmsNormParams>(c.hidden_size, kVisionNormEps, init));
  norm2 = register_module("norm2", std::make_shared<RmsNormParams>(c.hidden_size, kVisionNormEps, init));
  attn = register_module("attn", std::make_shared<VisionAttention>(c, init));
  mlp = register_module("mlp", std::make_shared<GatedMlp>(c.hidden_size, c.intermediate_size, true, init));
}

PatchEmbed::PatchEmbed(const VisionConfig& c, ParamInit& init) {
  proj_holder = register_module("proj", std::make_shared<torch::nn::Module>());
  weight = proj_holder->register_parameter(
      "weight", init.Normal({c.hidden_size, c.in_channels, c.temporal_patch_size, c.patch_size, c.patch_size}));
}

PatchMerger::PatchMerger(const VisionConfig& c, ParamInit& init) {
  const int64_t merged = c.hidden_size * c.spatial_merge_size * c.spatial_merge_size;
  ln_q = register_module("ln_q", std::make_shared<RmsNormParams>(c.hidden_size, kVisionNormEps, init));
  mlp_holder = register_module("mlp", std::make_shared<torch::nn::Module>());
  fc1 = mlp_holder->register_module("0", std::make_shared<LinearParams>(merged, merged, true, init));
  fc2 = mlp_holder->register_module("2", std::make_shared<LinearParams>(merged, c.out_hidden_size, true, init));
}

VisionModel::VisionModel(const VisionConfig& c, ParamInit& init) : config(c) {
  patch_embed = register_module("patch_embed", std::make_shared<PatchEmbed>(c, init));
  blocks_holder = register_module("blocks", std::make_shared<torch::nn::Module>());
  for (int64_t i = 0; i < c.depth; ++i) {
    blocks.push_back(blocks_holder->register_module(std::to_string(i), std::make_shared<VisionBlock>(c, init)));
  }
  merger = register_module("merger", std::make_shared<PatchMerger>(c, init));
}

namespace {

at::Tensor RotateHalf(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

at::Tensor LongTensor(const std::vector<int64_t>& values, const at::Device& device) {
  return torch::tensor(values, torch::kLong).to(device);
}

// Non-causal attention restricted to segments [cu[i], cu[i+1]). Segments of equal length are
// gathered into one batch, so a few matmuls cover the (mostly 64-token) windows.
at::Tensor SegmentedAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                              const std::vector<int64_t>& cu) {
  const int64_t N = q.size(0), heads = q.size(1), D = q.size(2);
  std::map<int64_t, std::vector<int64_t>> starts_by_length;
  for (size_t i = 0; i + 1 < cu.size(); ++i) starts_by_length[cu[i + 1] - cu[i]].push_back(cu[i]);
  std::vector<at::Tensor> outputs;
  std::vector<int64_t> order;
  order.reserve(N);
  for (const auto& [len, starts] : starts_by_length) {
    if (len == 0) continue;
    std::vector<int64_t> rows;
    for (int64_t s : starts)
      for (int64_t r = 0; r < len; ++r) rows.push_back(s + r);
    order.insert(order.end(), rows.begin(), rows.end());
    const int64_t S = static_cast<int64_t>(starts.size());
    at::Tensor idx = LongTensor(rows, q.device());
    auto gather = [&](const at::Tensor& t) { return t.index_select(0, idx).view({S, len, heads, D}).transpose(1, 2); };
    at::Tensor qs = gather(q), ks = gather(k), vs = gather(v);
    outputs.push_back(ScaledDotProductAttention(qs, ks, vs, at::Tensor()).transpose(1, 2).reshape({S * len, heads, D}));
  }
  at::Tensor gathered = torch::cat(outputs, 0);
  if (starts_by_length.size() == 1) return gathered;  // already in row order: segments tile [0, N)
  // Undo the grouping: row order[i] of the result is gathered[i].
  at::Tensor inverse = torch::argsort(LongTensor(order, q.device()));
  return gathered.index_select(0, inverse);
}

at::Tensor BlockForward(const VisionBlock& block, int64_t heads, const at::Tensor& x, const at::Tensor& cos,
                        const at::Tensor& sin, const std::vector<int64_t>& cu) {
  const int64_t N = x.size(0), hidden = x.size(1), D = hidden / heads;
  at::Tensor n = block.norm1->Forward(x);
  at::Tensor qkv = block.attn->qkv->Forward(n).view({N, 3, heads, D}).permute({1, 0, 2, 3});
  at::Tensor q = qkv[0], k = qkv[1], v = qkv[2];
  // HF apply_rotary_pos_emb_vision: rotate in float32, cast back.
  const auto dtype = x.scalar_type();
  at::Tensor qf = q.to(torch::kFloat), kf = k.to(torch::kFloat);
  q = (qf * cos + RotateHalf(qf) * sin).to(dtype);
  k = (kf * cos + RotateHalf(kf) * sin).to(dtype);
  at::Tensor attn = SegmentedAttention(q, k, v, cu).reshape({N, hidden});
  at::Tensor h = x + block.attn->proj->Forward(attn);
  return h + block.mlp->Forward(block.norm2->Forward(h));
}

// Activation checkpointing of one vision block, as CheckpointedLayer does for the decoder
// (text_model.cc): forward keeps only the block input; backward re-runs the block with grad enabled and
// back-propagates through it re-entrantly, accumulating the block's parameter gradients into .grad.
struct CheckpointedBlock : public torch::autograd::Function<CheckpointedBlock> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& cos,
                            const at::Tensor& sin, int64_t model_address, int64_t index, std::vector<int64_t> cu) {
    ctx->save_for_backward({x, cos, sin});
    ctx->saved_data["model"] = model_address;
    ctx->saved_data["index"] = index;
    ctx->saved_data["cu"] = cu;
    const auto* model = reinterpret_cast<const VisionModel*>(model_address);
    return BlockForward(*model->blocks[index], model->config.num_heads, x, cos, sin, cu);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto* model = reinterpret_cast<const VisionModel*>(ctx->saved_data["model"].toInt());
    const int64_t index = ctx->saved_data["index"].toInt();
    const std::vector<int64_t> cu = ctx->saved_data["cu"].toIntVector();
    at::Tensor x = saved[0].detach().requires_grad_(true);
    at::Tensor out;
    {
      torch::AutoGradMode enable_grad(true);
      out = BlockForward(*model->blocks[index], model->config.num_heads, x, saved[1], saved[2], cu);
    }
    torch::autograd::backward({out}, {grads[0]});
    return {x.grad(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor VisionModel::Forward(const at::Tensor& pixel_values, const std::vector<GridThw>& grids,
                                bool checkpoint_blocks) const {
  const VisionConfig& c = config;
  const at::Device device = patch_embed->weight.device();
  const auto dtype = patch_embed->weight.scalar_type();
  const int64_t unit = c.spatial_merge_size * c.spatial_merge_size;
  // Conv3d with kernel == stride over exactly one kernel per row is a matmul with the flattened
  // weight; the (C, T, P, P) flatten order equals the pixel_values column order.
  at::Tensor x = torch::matmul(pixel_values.to(device, dtype), patch_embed->weight.reshape({c.hidden_size, -1}).t());
  const int64_t N = x.size(0);

  // 2-D rotary: head_dim/2 rotary dims, half for the patch row and half for the column, same freqs.
  const int64_t rot_dim = c.head_dim() / 2;
  auto f32 = torch::TensorOptions().dtype(torch::kFloat).device(device);
  at::Tensor inv_freq = 1.0 / torch::pow(10000.0, torch::arange(0, rot_dim, 2, f32) / static_cast<double>(rot_dim));
  PatchCoordinates coords = ComputePatchCoordinates(grids, c.spatial_merge_size);
  at::Tensor rows = LongTensor(coords.rows, device).to(torch::kFloat).unsqueeze(1);
  at::Tensor cols = LongTensor(coords.cols, device).to(torch::kFloat).unsqueeze(1);
  at::Tensor rpe = torch::cat({rows * inv_freq, cols * inv_freq}, 1);  // [N, rot_dim]

  // Reorder patches (and their rotary rows) window by window, in units of merge groups.
  WindowIndex windows = ComputeWindowIndex(grids, c);
  at::Tensor window_index = LongTensor(windows.window_index, device);
  x = x.view({N / unit, unit, -1}).index_select(0, window_index).view({N, -1});
  rpe = rpe.view({N / unit, unit, -1}).index_select(0, window_index).view({N, -1});
  at::Tensor emb = torch::cat({rpe, rpe}, -1).unsqueeze(1);  // [N, 1, head_dim]
  at::Tensor cos = emb.cos(), sin = emb.sin();

  // Full-attention segments: one per image and temporal slice. Windows never cross images, so in
  // window order every image is still one contiguous run of its own patches.
  const std::vector<int64_t> full_cu = ComputeFullAttentionSeqlens(grids);
  const bool checkpoint = checkpoint_blocks && torch::GradMode::is_enabled() && !blocks.empty();
  // A checkpointed block only runs its backward when its input requires grad (a frozen patch
  // embedding under trainable blocks would otherwise cut their gradients).
  if (checkpoint && !x.requires_grad() && blocks[0]->norm1->weight.requires_grad()) x = x.detach().requires_grad_(true);
  for (int64_t i = 0; i < c.depth; ++i) {
    const bool full = std::find(c.fullatt_block_indexes.begin(), c.fullatt_block_indexes.end(), i) !=
                      c.fullatt_block_indexes.end();
    const std::vector<int64_t>& cu = full ? full_cu : windows.cu_window_seqlens;
    if (checkpoint) {
      x = CheckpointedBlock::apply(x, cos, sin, reinterpret_cast<int64_t>(this), i, cu);
    } else {
      x = BlockForward(*blocks[i], c.num_heads, x, cos, sin, cu);
    }
  }

  at::Tensor merged = merger->ln_q->Forward(x).view({N / unit, -1});
  merged = merger->fc2->Forward(torch::gelu(merger->fc1->Forward(merged)));  // exact (erf) GELU
  return merged.index_select(0, torch::argsort(window_index));
}

}  // namespace r1r::model
