// Shared building blocks (linear, RMSNorm, SwiGLU) and the M-RoPE text decoder.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <limits>
#include <optional>

#include "common/model/modules.h"

namespace r1r::model {

at::Tensor ParamInit::Normal(at::IntArrayRef shape, double std) {
  if (!random) return torch::empty(shape, options);
  return torch::empty(shape, torch::kFloat).normal_(0.0, std, generator).to(options);
}
at::Tensor ParamInit::Ones(at::IntArrayRef shape) { return torch::ones(shape, options); }

LinearParams::LinearParams(int64_t in, int64_t out, bool has_bias, ParamInit& init) {
  weight = register_parameter("weight", init.Normal({out, in}));
  if (has_bias) bias = register_parameter("bias", init.Normal({out}));
}

at::Tensor LinearParams::Forward(const at::Tensor& x) const { return at::linear(x, weight, bias); }

RmsNormParams::RmsNormParams(int64_t dim, double eps_in, ParamInit& init) : eps(eps_in) {
  weight = register_parameter("weight", init.Ones({dim}));
}

at::Tensor RmsNormParams::Forward(const at::Tensor& x) const {
  at::Tensor xf = x.to(torch::kFloat);
  at::Tensor normed = xf * torch::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * normed.to(x.scalar_type());
}

EmbeddingParams::EmbeddingParams(int64_t vocab, int64_t dim, ParamInit& init) {
  weight = register_parameter("weight", init.Normal({vocab, dim}));
}

GatedMlp::GatedMlp(int64_t dim, int64_t inner, bool bias, ParamInit& init) {
  gate_proj = register_module("gate_proj", std::make_shared<LinearParams>(dim, inner, bias, init));
  up_proj = register_module("up_proj", std::make_shared<LinearParams>(dim, inner, bias, init));
  down_proj = register_module("down_proj", std::make_shared<LinearParams>(inner, dim, bias, init));
}

at::Tensor GatedMlp::Forward(const at::Tensor& x) const {
  return down_proj->Forward(torch::silu(gate_proj->Forward(x)) * up_proj->Forward(x));
}

TextAttention::TextAttention(const TextConfig& c, ParamInit& init) {
  const int64_t q_dim = c.num_attention_heads * c.head_dim;
  const int64_t kv_dim = c.num_key_value_heads * c.head_dim;
  q_proj = register_module("q_proj", std::make_shared<LinearParams>(c.hidden_size, q_dim, true, init));
  k_proj = register_module("k_proj", std::make_shared<LinearParams>(c.hidden_size, kv_dim, true, init));
  v_proj = register_module("v_proj", std::make_shared<LinearParams>(c.hidden_size, kv_dim, true, init));
  o_proj = register_module("o_proj", std::make_shared<LinearParams>(q_dim, c.hidden_size, false, init));
}

TextLayer::TextLayer(const TextConfig& c, ParamInit& init) {
  input_layernorm = register_module("input_layernorm", std::make_shared<RmsNormParams>(c.hidden_size, c.rms_norm_eps, init));
  self_attn = register_module("self_attn", std::make_shared<TextAttention>(c, init));
  post_attention_layernorm =
      register_module("post_attention_layernorm", std::make_shared<RmsNormParams>(c.hidden_size, c.rms_norm_eps, init));
  mlp = register_module("mlp", std::make_shared<GatedMlp>(c.hidden_size, c.intermediate_size, false, init));
}

TextModel::TextModel(const TextConfig& c, ParamInit& init) : config(c) {
  embed_tokens = register_module("embed_tokens", std::make_shared<EmbeddingParams>(c.vocab_size, c.hidden_size, init));
  layers_holder = register_module("layers", std::make_shared<torch::nn::Module>());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    layers.push_back(layers_holder->register_module(std::to_string(i), std::make_shared<TextLayer>(c, init)));
  }
  norm = register_module("norm", std::make_shared<RmsNormParams>(c.hidden_size, c.rms_norm_eps, init));
}

at::Tensor ScaledDotProductAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                     const at::Tensor& allowed) {
#if TORCH_VERSION_MAJOR >= 2
  // A query row with no visible key (a padding slot) would come out NaN from the fused kernels and
  // poison later layers through 0 * NaN; let such rows see everything (their output is ignored).
  c10::optional<at::Tensor> mask;
  if (allowed.defined()) mask = allowed.logical_or(allowed.logical_not().all(-1, /*keepdim=*/true));
  return at::scaled_dot_product_attention(q, k, v, mask, /*dropout_p=*/0.0, /*is_causal=*/false);
#else
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  at::Tensor scores = (torch::matmul(q, k.transpose(-2, -1)) * scale).to(torch::kFloat);
  // masked_fill with the lowest finite value (not -inf): a row with no visible key (a padding query)
  // then gets a uniform distribution instead of NaN, and its output is ignored anyway.
  if (allowed.defined()) scores = scores.masked_fill(allowed.logical_not(), std::numeric_limits<float>::lowest());
  return torch::matmul(torch::softmax(scores, -1).to(q.scalar_type()), v);
#endif
}

namespace {

at::Tensor RotateHalf(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

// Attention of the decoder over q [B, nh, L, D] and k/v [B, nkv, S, D] (S = past + L), head h reading
// kv head h / rep. `allowed` [B or 1, 1, L, S] (bool) or undefined: causal (query i sees keys
// [0, S - L + i]). K/V are not repeated per query head where it can be avoided:
// - one query per row (decode), or an explicit mask: the rep query heads of a kv head are folded into
//   the query length ([B, nkv, rep * L, D]), so the kv heads are read as they are;
// - causal prefill on LibTorch >= 2.5: fused causal SDPA with enable_gqa (no mask, no copies);
// - causal prefill on LibTorch 2.0-2.4: fused causal SDPA on repeated K/V;
// - LibTorch 1.13: explicit matmuls; the causal mask is built here and, like a given mask, broadcast
//   over the rep groups rather than repeated.
at::Tensor DecoderAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& allowed) {
  const int64_t B = q.size(0), nh = q.size(1), L = q.size(2), D = q.size(3);
  const int64_t nkv = k.size(1), S = k.size(2), rep = nh / nkv;
  const int64_t past = S - L;
  at::Tensor mask = allowed;  // [B or 1, 1, L, S]
  if (!mask.defined() && L > 1) {
#if TORCH_VERSION_MAJOR >= 2
    if (past == 0) {
#if TORCH_VERSION_MAJOR > 2 || TORCH_VERSION_MINOR >= 5
      return at::scaled_dot_product_attention(q, k, v, std::nullopt, 0.0, /*is_causal=*/true, std::nullopt,
                                              /*enable_gqa=*/rep > 1);
#else
      at::Tensor kr = rep > 1 ? k.unsqueeze(2).expand({B, nkv, rep, S, D}).reshape({B, nh, S, D}) : k;
      at::Tensor vr = rep > 1 ? v.unsqueeze(2).expand({B, nkv, rep, S, D}).reshape({B, nh, S, D}) : v;
      return at::scaled_dot_product_attention(q, kr, vr, c10::nullopt, 0.0, /*is_causal=*/true);
#endif
    }
#endif
    at::Tensor q_pos = torch::arange(past, S, torch::dtype(torch::kLong).device(q.device())).unsqueeze(1);
    at::Tensor k_pos = torch::arange(0, S, torch::dtype(torch::kLong).device(q.device())).unsqueeze(0);
    mask = k_pos.le(q_pos).view({1, 1, L, S});
  }
  // Fold: [B, nh, L, D] -> [B, nkv, rep * L, D].
  at::Tensor qf = q.reshape({B, nkv, rep * L, D});
#if TORCH_VERSION_MAJOR >= 2
  if (mask.defined() && rep > 1 && L > 1) mask = mask.repeat({1, 1, rep, 1});  // SDPA wants [.., rep * L, S]
  at::Tensor out = ScaledDotProductAttention(qf, k, v, mask);                    // [B, nkv, rep * L, D]
#else
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  at::Tensor scores = (torch::matmul(qf, k.transpose(-2, -1)) * scale).to(torch::kFloat);  // [B, nkv, rep * L, S]
  if (mask.defined()) {
    // Lowest finite value, not -inf: a query with no visible key (padding) gets a uniform row, not NaN.
    scores = scores.view({B, nkv, rep, L, S})
                 .masked_fill(mask.logical_not().unsqueeze(2), std::numeric_limits<float>::lowest())
                 .view({B, nkv, rep * L, S});
  }
  at::Tensor out = torch::matmul(torch::softmax(scores, -1).to(q.scalar_type()), v);
#endif
  return out.reshape({B, nh, L, D});
}

// Packed rows: one causal attention per sample, `segments` [n, 3] (row, start, length) tiling every row
// in order. No query reaches another sample and no L x L mask exists: the work is the sum of the
// samples' squared lengths, and on LibTorch 2.x each sample is one fused causal SDPA call.
at::Tensor PackedAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& segments) {
  auto seg = segments.accessor<int64_t, 2>();
  std::vector<at::Tensor> rows, pieces;
  for (int64_t i = 0; i < segments.size(0); ++i) {
    const int64_t row = seg[i][0], start = seg[i][1], length = seg[i][2];
    if (static_cast<int64_t>(rows.size()) != row) {  // the previous row is complete
      rows.push_back(torch::cat(pieces, 2));
      pieces.clear();
    }
    auto part = [&](const at::Tensor& t) { return t.narrow(0, row, 1).narrow(2, start, length); };
    pieces.push_back(DecoderAttention(part(q), part(k), part(v), at::Tensor()));
  }
  rows.push_back(torch::cat(pieces, 2));
  return rows.size() == 1 ? rows[0] : torch::cat(rows, 0);
}

// Causal self-attention of one layer; q/k/v biases; grouped-query attention (DecoderAttention).
at::Tensor Attention(const TextAttention& attn, const TextConfig& c, const at::Tensor& x, const RotaryTables& rotary,
                     const AttentionLayout& layout, KvCache* cache, int64_t layer) {
  const int64_t B = x.size(0), L = x.size(1), D = c.head_dim;
  const int64_t nh = c.num_attention_heads, nkv = c.num_key_value_heads;
  at::Tensor q = attn.q_proj->Forward(x).view({B, L, nh, D}).transpose(1, 2);
  at::Tensor k = attn.k_proj->Forward(x).view({B, L, nkv, D}).transpose(1, 2);
  at::Tensor v = attn.v_proj->Forward(x).view({B, L, nkv, D}).transpose(1, 2);
  q = q * rotary.cos + RotateHalf(q) * rotary.sin;
  k = k * rotary.cos + RotateHalf(k) * rotary.sin;
  if (cache != nullptr) std::tie(k, v) = cache->Append(layer, k, v);
  at::Tensor out = layout.segments.defined() ? PackedAttention(q, k, v, layout.segments)
                                             : DecoderAttention(q, k, v, layout.allowed);
  return attn.o_proj->Forward(out.transpose(1, 2).reshape({B, L, nh * D}));
}

}  // namespace

RotaryTables TextModel::Rotary(const at::Tensor& position_ids, at::ScalarType dtype) const {
  const int64_t D = config.head_dim;
  at::Tensor inv_freq, stream_of_freq;
  {
    std::lock_guard<std::mutex> lock(rotary_mu);
    if (!rotary_inv_freq.defined() || rotary_inv_freq.device() != position_ids.device()) {
      // Same expression as HF: 1 / base^(arange(0, D, 2) / D) in float32.
      rotary_inv_freq =
          (1.0 / torch::pow(config.rope_theta, torch::arange(0, D, 2, torch::kLong).to(torch::kFloat) / D))
              .to(position_ids.device());
      // Frequency j takes its position from stream t, h or w according to mrope_section.
      std::vector<int64_t> streams;
      for (int64_t s = 0; s < 3; ++s)
        for (int64_t i = 0; i < config.mrope_section[s]; ++i) streams.push_back(s);
      rotary_stream_of_freq = torch::tensor(streams, torch::kLong).to(position_ids.device());
    }
    inv_freq = rotary_inv_freq;
    stream_of_freq = rotary_stream_of_freq;
  }
  at::Tensor freqs = position_ids.to(torch::kFloat).unsqueeze(-1) * inv_freq;  // [3, B, L, D/2]
  at::Tensor select = stream_of_freq.view({1, 1, 1, D / 2}).expand({1, freqs.size(1), freqs.size(2), D / 2});
  at::Tensor chosen = freqs.gather(0, select).squeeze(0);  // [B, L, D/2]
  at::Tensor emb = torch::cat({chosen, chosen}, -1).unsqueeze(1);  // [B, 1, L, D]
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

namespace {

at::Tensor LayerForward(const TextLayer& layer, const TextConfig& config, const at::Tensor& x,
                        const RotaryTables& rotary, const AttentionLayout& layout, KvCache* cache, int64_t index) {
  at::Tensor h = x + Attention(*layer.self_attn, config, layer.input_layernorm->Forward(x), rotary, layout, cache, index);
  return h + layer.mlp->Forward(layer.post_attention_layernorm->Forward(h));
}

// save_for_backward takes defined tensors: an empty one stands for "undefined" in the saved layout.
at::Tensor Saveable(const at::Tensor& t) { return t.defined() ? t : torch::empty({0}, torch::kBool); }
at::Tensor Restored(const at::Tensor& t) { return t.numel() == 0 ? at::Tensor() : t; }

// Activation checkpointing of one decoder layer: forward keeps only the layer input; backward
// re-runs the layer with grad enabled and back-propagates through it re-entrantly (as PyTorch's
// reentrant torch.utils.checkpoint does), which accumulates the layer's parameter gradients into
// their .grad. Hence it supports loss.backward(), not torch::autograd::grad w.r.t. parameters.
struct CheckpointedLayer : public torch::autograd::Function<CheckpointedLayer> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& cos,
                            const at::Tensor& sin, const at::Tensor& allowed, const at::Tensor& segments,
                            int64_t model_address, int64_t index) {
    ctx->save_for_backward({x, cos, sin, allowed, segments});
    ctx->saved_data["model"] = model_address;
    ctx->saved_data["index"] = index;
    const auto* model = reinterpret_cast<const TextModel*>(model_address);
    return LayerForward(*model->layers[index], model->config, x, {cos, sin}, {Restored(allowed), Restored(segments)},
                        nullptr, index);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto* model = reinterpret_cast<const TextModel*>(ctx->saved_data["model"].toInt());
    const int64_t index = ctx->saved_data["index"].toInt();
    at::Tensor x = saved[0].detach().requires_grad_(true);
    at::Tensor out;
    {
      torch::AutoGradMode enable_grad(true);
      out = LayerForward(*model->layers[index], model->config, x, {saved[1], saved[2]},
                         {Restored(saved[3]), Restored(saved[4])}, nullptr, index);
    }
    torch::autograd::backward({out}, {grads[0]});
    return {x.grad(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor TextModel::Forward(const at::Tensor& embeds, const RotaryTables& rotary, const AttentionLayout& layout,
                              KvCache* cache, bool checkpoint_layers) const {
  at::Tensor h = embeds;
  const bool checkpoint = checkpoint_layers && cache == nullptr && torch::GradMode::is_enabled();
  // A checkpointed layer only runs its backward when its input requires grad (e.g. frozen
  // embeddings would otherwise silently cut the gradient to every layer).
  if (checkpoint && !h.requires_grad()) h = h.detach().requires_grad_(true);
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto index = static_cast<int64_t>(i);
    if (checkpoint) {
      h = CheckpointedLayer::apply(h, rotary.cos, rotary.sin, Saveable(layout.allowed), Saveable(layout.segments),
                                   reinterpret_cast<int64_t>(this), index);
    } else {
      h = LayerForward(*layers[i], config, h, rotary, layout, cache, index);
    }
  }
  return norm->Forward(h);
}

}  // namespace r1r::model
