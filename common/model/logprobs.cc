#include "common/model/logprobs.h"

#include <torch/torch.h>

#include "absl/strings/str_cat.h"

namespace r1r::model {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Logits of one chunk in float32: matmul in the model dtype (as lm_head does), then upcast.
at::Tensor ChunkLogits(const at::Tensor& h, const at::Tensor& weight, double temperature) {
  return torch::matmul(h, weight.t()).to(torch::kFloat) / temperature;
}

struct ChunkedLogProbFunction : public torch::autograd::Function<ChunkedLogProbFunction> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& hidden, const at::Tensor& weight,
                               const at::Tensor& targets, int64_t chunk, double temperature, bool with_entropy) {
    const int64_t N = hidden.size(0);
    at::Tensor logprobs = torch::empty({N}, hidden.options().dtype(torch::kFloat));
    at::Tensor entropy = torch::zeros({N}, hidden.options().dtype(torch::kFloat));
    for (int64_t s = 0; s < N; s += chunk) {
      const int64_t n = std::min(chunk, N - s);
      at::Tensor logp = torch::log_softmax(ChunkLogits(hidden.narrow(0, s, n), weight, temperature), -1);
      logprobs.narrow(0, s, n).copy_(logp.gather(1, targets.narrow(0, s, n).unsqueeze(1)).squeeze(1));
      if (with_entropy) entropy.narrow(0, s, n).copy_(-(logp.exp() * logp).sum(-1));
    }
    ctx->save_for_backward({hidden, weight, targets, entropy});
    ctx->saved_data["chunk"] = chunk;
    ctx->saved_data["temperature"] = temperature;
    ctx->saved_data["with_entropy"] = with_entropy;
    return {logprobs, entropy};
  }

  // d logp_t / dz = onehot_t - p;  d H / dz = -p * (log p + H);  z = logits / T.
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor& hidden = saved[0];
    const at::Tensor& weight = saved[1];
    const at::Tensor& targets = saved[2];
    const at::Tensor& entropy = saved[3];
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    const double temperature = ctx->saved_data["temperature"].toDouble();
    const bool with_entropy = ctx->saved_data["with_entropy"].toBool();
    at::Tensor g_logp = grads[0];
    at::Tensor g_ent = grads[1];
    const int64_t N = hidden.size(0);
    at::Tensor grad_hidden = torch::empty_like(hidden);
    const bool need_weight = ctx->needs_input_grad(1);
    at::Tensor grad_weight = need_weight ? torch::zeros(weight.sizes(), weight.options().dtype(torch::kFloat)) : at::Tensor();
    for (int64_t s = 0; s < N; s += chunk) {
      const int64_t n = std::min(chunk, N - s);
      at::Tensor h = hidden.narrow(0, s, n);
      at::Tensor logp = torch::log_softmax(ChunkLogits(h, weight, temperature), -1);
      at::Tensor p = logp.exp();
      at::Tensor grad_z = -p;
      if (g_logp.defined()) {
        at::Tensor g = g_logp.narrow(0, s, n).to(torch::kFloat);
        grad_z = grad_z * g.unsqueeze(1);
        grad_z.scatter_add_(1, targets.narrow(0, s, n).unsqueeze(1), g.unsqueeze(1));
      } else {
        grad_z.zero_();
      }
      if (with_entropy && g_ent.defined()) {
        at::Tensor g = g_ent.narrow(0, s, n).to(torch::kFloat).unsqueeze(1);
        grad_z = grad_z - g * p * (logp + entropy.narrow(0, s, n).unsqueeze(1));
      }
      at::Tensor grad_logits = (grad_z / temperature).to(hidden.scalar_type());
      grad_hidden.narrow(0, s, n).copy_(torch::matmul(grad_logits, weight));
      if (need_weight) grad_weight.add_(torch::matmul(grad_logits.t(), h).to(torch::kFloat));
    }
    return {grad_hidden, need_weight ? grad_weight.to(weight.scalar_type()) : at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

std::pair<at::Tensor, at::Tensor> ChunkedTokenLogProbs(const at::Tensor& hidden, const at::Tensor& weight,
                                                       const at::Tensor& targets, int64_t chunk_size,
                                                       double temperature, bool compute_entropy) {
  variable_list out = ChunkedLogProbFunction::apply(hidden, weight, targets.to(hidden.device(), torch::kLong),
                                                    std::max<int64_t>(1, chunk_size), temperature, compute_entropy);
  return {out[0], compute_entropy ? out[1] : at::Tensor()};
}

absl::StatusOr<TokenLogProbs> ComputeTokenLogProbs(Qwen2_5_VL& model, const ForwardInput& input,
                                                   const TokenLogProbsOptions& options) {
  if (!input.input_ids.defined() || input.input_ids.dim() != 2) {
    return absl::InvalidArgumentError("input_ids must be [batch, length]");
  }
  const int64_t B = input.input_ids.size(0), L = input.input_ids.size(1);
  const int64_t first = options.first_target_position;
  if (first < 1 || first > L) {
    return absl::InvalidArgumentError(absl::StrCat("first_target_position must be in [1, ", L, "], got ", first));
  }
  if (!(options.temperature > 0.0)) return absl::InvalidArgumentError("temperature must be positive");
  if (input.cache != nullptr) return absl::InvalidArgumentError("teacher-forced scoring does not use a KV cache");
  auto out = model.Forward(input);
  if (!out.ok()) return out.status();
  try {
    const int64_t T = L - first;
    TokenLogProbs result;
    if (T == 0) {
      result.logprobs = torch::zeros({B, 0}, torch::kFloat).to(model.options().device);
      if (options.compute_entropy) result.entropy = result.logprobs.clone();
      return result;
    }
    // Position t predicts token t + 1.
    at::Tensor hidden = out->hidden.narrow(1, first - 1, T).reshape({B * T, -1});
    at::Tensor targets = input.input_ids.to(model.options().device, torch::kLong).narrow(1, first, T).reshape({B * T});
    auto [logprobs, entropy] = ChunkedTokenLogProbs(hidden, model.output_weight(), targets, options.chunk_size,
                                                    options.temperature, options.compute_entropy);
    result.logprobs = logprobs.view({B, T});
    if (options.compute_entropy) result.entropy = entropy.view({B, T});
    return result;
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("token log-probs: ", e.what_without_backtrace()));
  }
}

absl::StatusOr<at::Tensor> ComputeTokenLogProbsAt(Qwen2_5_VL& model, const ForwardInput& input,
                                                  const at::Tensor& positions, const TokenLogProbsOptions& options) {
  if (!input.input_ids.defined() || input.input_ids.dim() != 2) {
    return absl::InvalidArgumentError("input_ids must be [batch, length]");
  }
  if (!(options.temperature > 0.0)) return absl::InvalidArgumentError("temperature must be positive");
  if (input.cache != nullptr) return absl::InvalidArgumentError("teacher-forced scoring does not use a KV cache");
  const int64_t L = input.input_ids.size(1);
  at::Tensor where = positions.to(torch::kCPU, torch::kLong);
  if (where.dim() != 1 || (where.numel() > 0 && (where.remainder(L).eq(0).any().item<bool>() ||
                                                 where.lt(0).any().item<bool>() ||
                                                 where.ge(input.input_ids.numel()).any().item<bool>()))) {
    return absl::InvalidArgumentError(absl::StrCat("positions must be flat indices into input_ids [",
                                                   input.input_ids.size(0), ", ", L, "], none at a row's column 0"));
  }
  auto out = model.Forward(input);
  if (!out.ok()) return out.status();
  try {
    const at::Device device = model.options().device;
    at::Tensor at_device = where.to(device);
    at::Tensor hidden = out->hidden.reshape({-1, out->hidden.size(-1)}).index_select(0, at_device - 1);
    at::Tensor targets = input.input_ids.to(device, torch::kLong).reshape({-1}).index_select(0, at_device);
    return ChunkedTokenLogProbs(hidden, model.output_weight(), targets, options.chunk_size, options.temperature,
                                /*compute_entropy=*/false)
        .first;
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("token log-probs: ", e.what_without_backtrace()));
  }
}

}  // namespace r1r::model
