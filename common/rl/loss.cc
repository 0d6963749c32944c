#include "common/rl/loss.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include <torch/torch.h>

#include "common/rl/advantage.h"

namespace r1r::rl {
namespace {

at::Tensor Valid(const at::Tensor& mask) {
  return mask.scalar_type() == at::kBool ? mask : mask.ne(0);
}

// Token mean per sequence, then mean over sequences (the paper's 1/|o_i| sum_t, averaged over i).
at::Tensor SequenceMeanOfTokenMeans(const at::Tensor& per_token, const at::Tensor& valid_f) {
  const at::Tensor per_sequence = per_token.sum(1) / valid_f.sum(1).clamp_min(1.0);
  return per_sequence.mean();
}

bool IsCpuFloating(const at::Tensor& t) {
  return t.is_cpu() && (t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble);
}

// out = clamp(x, lo, hi); returns how many x lie outside [lo, hi]. Written so the compiler vectorises it
// (counter as wide as the element, summed per chunk so it cannot overflow).
template <typename T>
int64_t ClampAndCount(const T* __restrict x, T* __restrict out, int64_t n, T lo, T hi) {
  using Counter = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;
  constexpr int64_t kChunk = int64_t{1} << 20;
  int64_t total = 0;
  for (int64_t start = 0; start < n; start += kChunk) {
    const int64_t end = std::min(n, start + kChunk);
    Counter count = 0;
    for (int64_t i = start; i < end; ++i) {
      const T v = x[i];
      count += static_cast<Counter>((v < lo) | (v > hi));
      out[i] = std::min(std::max(v, lo), hi);
    }
    total += count;
  }
  return total;
}

// d exp(clamp(x)) / dx = exp(clamp(x)) inside [lo, hi], 0 outside (as torch's clamp backward).
template <typename T>
void GradientInside(const T* __restrict x, const T* __restrict ratio, const T* __restrict grad, T* __restrict out,
                    int64_t n, T lo, T hi) {
  for (int64_t i = 0; i < n; ++i) {
    const T inside = static_cast<T>((x[i] >= lo) & (x[i] <= hi));
    out[i] = grad[i] * ratio[i] * inside;
  }
}

// ratio = exp(clamp(log_ratio, lo, hi)) with the gradient of that composition (0 outside [lo, hi]). On CPU
// the backward is one fused pass, so pre-clip costs a clamp in the forward and nothing in the backward.
class PreClippedExp : public torch::autograd::Function<PreClippedExp> {
 public:
  // `outside` receives the number of elements outside [lo, hi] (the pre-clip fraction's numerator).
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& log_ratio, double lo,
                            double hi, at::Tensor* outside) {
    at::Tensor ratio;
    if (IsCpuFloating(log_ratio)) {  // clamp and count in one pass
      const at::Tensor x = log_ratio.contiguous();
      ratio = at::empty_like(x);
      int64_t count = 0;
      AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "pre_clip_forward", [&] {
        count = ClampAndCount<scalar_t>(x.data_ptr<scalar_t>(), ratio.data_ptr<scalar_t>(), x.numel(),
                                        static_cast<scalar_t>(lo), static_cast<scalar_t>(hi));
      });
      ratio.exp_();
      *outside = at::scalar_tensor(count, at::kLong);
    } else {
      ratio = log_ratio.clamp(lo, hi).exp_();
      *outside = ((log_ratio < lo) | (log_ratio > hi)).sum();
    }
    ctx->save_for_backward({log_ratio, ratio});
    ctx->saved_data["lo"] = lo;
    ctx->saved_data["hi"] = hi;
    return ratio;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& ratio = saved[1];
    const double lo = ctx->saved_data["lo"].toDouble();
    const double hi = ctx->saved_data["hi"].toDouble();
    const at::Tensor g = grads[0];
    at::Tensor grad_in;
    if (IsCpuFloating(x) && g.scalar_type() == x.scalar_type() && g.sizes() == x.sizes()) {
      const at::Tensor xc = x.contiguous(), rc = ratio.contiguous(), gc = g.contiguous();
      grad_in = at::empty_like(xc);
      AT_DISPATCH_FLOATING_TYPES(xc.scalar_type(), "pre_clipped_exp_backward", [&] {
        GradientInside<scalar_t>(xc.data_ptr<scalar_t>(), rc.data_ptr<scalar_t>(), gc.data_ptr<scalar_t>(),
                                 grad_in.data_ptr<scalar_t>(), xc.numel(), static_cast<scalar_t>(lo),
                                 static_cast<scalar_t>(hi));
      });
    } else {
      grad_in = at::where((x >= lo) & (x <= hi), g * ratio, at::zeros({}, g.options()));
    }
    return {grad_in, torch::autograd::Variable(), torch::autograd::Variable(), torch::autograd::Variable()};
  }
};

}  // namespace

PolicyLossResult PolicyLoss(const at::Tensor& logp, const at::Tensor& logp_old, const at::Tensor& advantages,
                            const at::Tensor& mask, const PolicyLossConfig& config, bool compute_diagnostics,
                            double global_token_count) {
  const at::Tensor valid = Valid(mask);
  const at::Tensor zero = at::zeros({}, logp.options());
  // Select first: padding may hold NaN/Inf, and exp of it would poison the gradients through where().
  const at::Tensor raw_log_ratio = at::where(valid, logp - logp_old.detach(), zero);
  const at::Tensor adv = at::where(valid, advantages.detach().to(logp.scalar_type()), zero);

  const double ld_min = std::log(config.pre_clip.ratio_min);
  const double ld_max = std::log(config.pre_clip.ratio_max);
  at::Tensor pre_clipped = at::zeros({}, at::kLong);  // tokens outside the pre-clip bounds
  const at::Tensor ratio = config.pre_clip.enabled ? PreClippedExp::apply(raw_log_ratio, ld_min, ld_max, &pre_clipped)
                                                   : at::exp(raw_log_ratio);
  const at::Tensor surrogate = ratio * adv;
  const at::Tensor clipped_surrogate = ratio.clamp(1.0 - config.clip_eps_low, 1.0 + config.clip_eps_high) * adv;
  // Padding contributes exactly 0: adv is 0 there.
  const at::Tensor per_token = -at::min(surrogate, clipped_surrogate);

  PolicyLossResult result;
  const at::Tensor valid_f = valid.to(logp.scalar_type());
  switch (config.aggregation) {
    case LossAggregation::kSequenceMeanOfTokenMeans:
      result.loss = SequenceMeanOfTokenMeans(per_token, valid_f);
      break;
    case LossAggregation::kGlobalTokenMean: {
      const at::Tensor denom = global_token_count > 0.0 ? at::full({}, global_token_count, logp.options())
                                                        : valid_f.sum().clamp_min(1.0);
      result.loss = per_token.sum() / denom;
      break;
    }
  }
  if (!compute_diagnostics) return result;

  at::NoGradGuard no_grad;
  const at::Tensor n = valid_f.sum();
  // Padding has A = 0 and log-ratio 0, so it is never counted as clipped or pre-clipped.
  const at::Tensor clipped = clipped_surrogate < surrogate;
  const at::Tensor kl_old_new = ApproxKl(logp_old, logp, mask, KlEstimator::kK3);
  const at::Tensor inf = at::full({}, INFINITY, ratio.options());
  const at::Tensor stats = at::stack({
                                         n,
                                         clipped.sum().to(n.scalar_type()),
                                         pre_clipped.to(n.device(), n.scalar_type()),
                                         kl_old_new.sum().to(n.scalar_type()),
                                         at::where(valid, ratio, inf).min(),
                                         at::where(valid, ratio, -inf).max(),
                                     })
                               .to(at::kCPU, at::kDouble)
                               .contiguous();
  const double* s = stats.data_ptr<double>();
  PolicyLossDiagnostics& d = result.diagnostics;
  d.valid_tokens = static_cast<int64_t>(s[0]);
  if (s[0] > 0) {
    d.clip_fraction = s[1] / s[0];
    d.pre_clip_fraction = s[2] / s[0];
    d.approx_kl = s[3] / s[0];
    d.ratio_min = s[4];
    d.ratio_max = s[5];
  }
  return result;
}

SftLossResult SftCrossEntropy(const at::Tensor& logits, const at::Tensor& labels, const at::Tensor& label_mask) {
  const at::Tensor valid = Valid(label_mask);
  const at::Tensor safe_labels = at::where(valid, labels, at::zeros({}, labels.options()));
  const at::Tensor log_probs = at::log_softmax(logits, -1);
  const at::Tensor token_logp = log_probs.gather(-1, safe_labels.unsqueeze(-1)).squeeze(-1);
  const at::Tensor nll = at::where(valid, -token_logp, at::zeros({}, token_logp.options()));
  SftLossResult result;
  const at::Tensor count = valid.sum();
  result.tokens = count.item<int64_t>();
  result.loss = nll.sum() / count.clamp_min(1).to(nll.scalar_type());
  return result;
}

}  // namespace r1r::rl
