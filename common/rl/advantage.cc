#include "common/rl/advantage.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include <torch/torch.h>

namespace r1r::rl {
namespace {

at::Tensor Valid(const at::Tensor& mask) {
  return mask.scalar_type() == at::kBool ? mask : mask.ne(0);
}

at::Tensor ZeroLike(const at::Tensor& t) { return at::zeros({}, t.options()); }

}  // namespace

at::Tensor ApproxKl(const at::Tensor& logp, const at::Tensor& logp_ref, const at::Tensor& mask,
                    KlEstimator estimator) {
  const at::Tensor diff = logp - logp_ref;
  // Select before any nonlinearity so garbage at padding reaches neither values nor gradients.
  const at::Tensor lr = at::where(Valid(mask), diff, ZeroLike(diff));
  switch (estimator) {
    case KlEstimator::kK1:
      return lr;
    case KlEstimator::kK2:
      return lr.square() * 0.5;
    case KlEstimator::kK3:
      return at::exp(-lr) - 1.0 + lr;
  }
  return lr;
}

at::Tensor LastValidIndex(const at::Tensor& mask) {
  const int64_t t = mask.size(1);
  return (t - 1) - Valid(mask).to(at::kInt).flip({1}).argmax(1);
}

at::Tensor TokenRewards(const at::Tensor& sequence_reward, const at::Tensor& kl, const at::Tensor& mask,
                        double kl_coef, double clip_min, double clip_max) {
  const auto dtype = sequence_reward.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const at::Tensor valid = Valid(mask);
  at::Tensor rewards;
  if (kl_coef != 0.0) {
    const at::Tensor scaled = kl.to(dtype) * (-kl_coef);
    rewards = at::where(valid, scaled, ZeroLike(scaled));
  } else {
    rewards = at::zeros(mask.sizes(), mask.options().dtype(dtype));
  }
  const at::Tensor final_reward = sequence_reward.to(dtype).clamp(clip_min, clip_max);
  return rewards.scatter_add(1, LastValidIndex(mask).unsqueeze(1), final_reward.unsqueeze(1));
}

at::Tensor DiscountedReturns(const at::Tensor& token_rewards, const at::Tensor& mask, double gamma) {
  const at::Tensor valid = Valid(mask);
  const at::Tensor rewards = at::where(valid, token_rewards, ZeroLike(token_rewards));
  at::Tensor returns;
  if (gamma == 1.0) {
    returns = rewards.flip({1}).cumsum(1).flip({1});  // undiscounted: a reverse cumulative sum
  } else {
    const int64_t t_len = rewards.size(1);
    std::vector<at::Tensor> columns(static_cast<size_t>(t_len));
    at::Tensor running = at::zeros({rewards.size(0)}, rewards.options());
    for (int64_t t = t_len - 1; t >= 0; --t) {
      running = rewards.select(1, t) + running * gamma;
      columns[static_cast<size_t>(t)] = running;
    }
    returns = at::stack(columns, 1);
  }
  return at::where(valid, returns, ZeroLike(returns));
}

at::Tensor GroupNormalizedRewards(const at::Tensor& sequence_reward, int group_size, double eps) {
  const at::Tensor grouped = sequence_reward.reshape({-1, group_size});
  const at::Tensor mean = grouped.mean(1, /*keepdim=*/true);
  const at::Tensor std = grouped.std(1, /*unbiased=*/true, /*keepdim=*/true);
  return ((grouped - mean) / (std + eps)).reshape(sequence_reward.sizes());
}

at::Tensor LeaveOneOutRewards(const at::Tensor& sequence_reward, int group_size) {
  const at::Tensor grouped = sequence_reward.reshape({-1, group_size});
  const at::Tensor others_mean = (grouped.sum(1, /*keepdim=*/true) - grouped) / (group_size - 1);
  return (grouped - others_mean).reshape(sequence_reward.sizes());
}

double MaskedMoments::Mean() const { return count > 0.0 ? sum / count : 0.0; }

double MaskedMoments::PopulationVariance() const {
  if (count <= 0.0) return 0.0;
  const double mean = Mean();
  return std::max(0.0, sum_squares / count - mean * mean);
}

MaskedMoments& MaskedMoments::operator+=(const MaskedMoments& other) {
  count += other.count;
  sum += other.sum;
  sum_squares += other.sum_squares;
  return *this;
}

at::Tensor MaskedMoments::ToTensor() const {
  return torch::tensor({count, sum, sum_squares}, torch::kFloat64);
}

MaskedMoments MaskedMoments::FromTensor(const at::Tensor& packed) {
  const at::Tensor cpu = packed.to(at::kCPU, at::kDouble).contiguous();
  const double* p = cpu.data_ptr<double>();
  return MaskedMoments{p[0], p[1], p[2]};
}

MaskedMoments ComputeMaskedMoments(const at::Tensor& values, const at::Tensor& mask) {
  at::NoGradGuard no_grad;
  const at::Tensor valid = Valid(mask);
  const at::Tensor x = at::where(valid, values, ZeroLike(values)).to(at::kDouble);
  const at::Tensor packed = at::stack({valid.sum().to(at::kDouble), x.sum(), x.square().sum()});
  return MaskedMoments::FromTensor(packed);
}

double FilterStats::FilteredFraction() const {
  return valid_tokens > 0 ? static_cast<double>(filtered_tokens) / static_cast<double>(valid_tokens) : 0.0;
}

namespace {

// The window of z-scores the filter keeps; NaN compares false and is never kept.
struct KeepWindow {
  double lo;
  double hi;
};

KeepWindow FilterWindowFor(const AdvantageFilterConfig& filter, double mean) {
  const double k = filter.threshold;
  switch (filter.window) {
    case FilterWindow::kPaperSymmetric:
      return {-k, k};
    case FilterWindow::kReleasedCodeMeanShift:
      // The released code compares z with the raw advantage mean +- 3, and also drops |z| > 10.
      return {std::max(mean - k, -10.0), std::min(mean + k, 10.0)};
  }
  return {-k, k};
}

// One pass over contiguous CPU data: z-score, window, padding and the two counts together. Whitening
// without the filter runs the same loop, so the filter costs two compares per token and nothing more.
// Branch-free and with element-wide counters (summed per chunk) so the compiler vectorises it.
template <typename T, bool kFilter>
void WhitenLoop(const T* __restrict x, const uint8_t* __restrict valid, T* __restrict out, int64_t n, T mean, T rstd,
                T lo, T hi, int64_t& n_valid, int64_t& n_kept) {
  using Counter = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;  // as wide as T: vectorises
  constexpr int64_t kChunk = int64_t{1} << 24;
  n_valid = 0;
  n_kept = 0;
  for (int64_t start = 0; start < n; start += kChunk) {
    const int64_t end = std::min(n, start + kChunk);
    Counter v = 0, kept = 0;
    for (int64_t i = start; i < end; ++i) {
      const T z = (x[i] - mean) * rstd;
      const Counter m = static_cast<Counter>(valid[i]);
      const Counter keep = kFilter ? m & static_cast<Counter>((z >= lo) & (z <= hi)) : m;
      out[i] = keep ? z : T(0);
      v += m;
      kept += keep;
    }
    n_valid += v;
    n_kept += kept;
  }
}

template <typename T>
void WhitenCpu(const at::Tensor& values, const at::Tensor& valid, at::Tensor& out, double mean, double rstd,
               const KeepWindow* window, int64_t& n_valid, int64_t& n_kept) {
  const int64_t n = values.numel();
  const T* x = values.data_ptr<T>();
  // bool has no vector type in GCC; its bytes are 0 or 1.
  const auto* m = reinterpret_cast<const uint8_t*>(valid.data_ptr<bool>());
  T* o = out.data_ptr<T>();
  if (window != nullptr) {
    WhitenLoop<T, true>(x, m, o, n, T(mean), T(rstd), T(window->lo), T(window->hi), n_valid, n_kept);
  } else {
    WhitenLoop<T, false>(x, m, o, n, T(mean), T(rstd), T(0), T(0), n_valid, n_kept);
  }
}

}  // namespace

WhitenedAdvantages WhitenAndFilter(const at::Tensor& values, const at::Tensor& mask,
                                   const MaskedMoments& global_moments, const AdvantageConfig& config) {
  at::NoGradGuard no_grad;
  WhitenedAdvantages out;
  out.mean = global_moments.Mean();
  out.std = std::sqrt(std::max(global_moments.PopulationVariance(), config.whiten_var_floor));
  const double rstd = 1.0 / out.std;  // z = (x - mean) * rsqrt(max(var, floor))
  const KeepWindow window = FilterWindowFor(config.filter, out.mean);
  const KeepWindow* filter = config.filter.enabled ? &window : nullptr;

  const at::Tensor valid = Valid(mask).contiguous();
  int64_t n_valid = 0, n_kept = 0;
  const auto z_scores = [&] { return (values - out.mean) * rstd; };  // as WhitenLoop computes them
  at::Tensor z;
  if (values.is_cpu() && (values.scalar_type() == at::kFloat || values.scalar_type() == at::kDouble) &&
      values.sizes() == valid.sizes()) {
    const at::Tensor x = values.contiguous();
    out.advantages = at::empty_like(x);
    if (x.scalar_type() == at::kFloat) {
      WhitenCpu<float>(x, valid, out.advantages, out.mean, rstd, filter, n_valid, n_kept);
    } else {
      WhitenCpu<double>(x, valid, out.advantages, out.mean, rstd, filter, n_valid, n_kept);
    }
  } else {  // any device or dtype: the same arithmetic as tensor ops
    z = z_scores();
    at::Tensor keep = filter != nullptr ? valid & (z >= window.lo) & (z <= window.hi) : valid;
    out.advantages = at::where(keep, z, at::zeros({}, z.options()));
    const at::Tensor counts = at::stack({valid.sum(), keep.sum()}).cpu();
    n_valid = counts[0].item<int64_t>();
    n_kept = counts[1].item<int64_t>();
  }
  out.filter.valid_tokens = n_valid;
  out.filter.filtered_tokens = n_valid - n_kept;
  // Non-finite z-scores are among the filtered ones: count them only when something was filtered.
  if (out.filter.filtered_tokens > 0) {
    if (!z.defined()) z = z_scores();
    out.filter.nonfinite_tokens = (valid & z.isfinite().logical_not()).sum().item<int64_t>();
  }
  return out;
}

at::Tensor ComputeReturns(const RolloutBatch& batch, const AdvantageConfig& config) {
  at::NoGradGuard no_grad;
  at::Tensor reward = batch.sequence_reward;
  switch (config.estimator) {
    case AdvantageEstimator::kReinforce:
      break;
    case AdvantageEstimator::kGroupNorm:
      reward = GroupNormalizedRewards(reward, config.group_size, config.group_std_eps);
      break;
    case AdvantageEstimator::kRloo:
      reward = LeaveOneOutRewards(reward, config.group_size);
      break;
  }
  at::Tensor kl;
  if (config.kl_coef != 0.0) kl = ApproxKl(batch.logp_old, batch.logp_ref, batch.mask, config.kl_estimator);
  const at::Tensor token_rewards = TokenRewards(reward, kl, batch.mask, config.kl_coef,
                                                config.reward_clip_min, config.reward_clip_max);
  return DiscountedReturns(token_rewards, batch.mask, config.gamma);
}

WhitenedAdvantages FinalizeAdvantages(const at::Tensor& returns, const at::Tensor& mask,
                                      const MaskedMoments& global_moments, const AdvantageConfig& config) {
  if (config.whiten) return WhitenAndFilter(returns, mask, global_moments, config);
  WhitenedAdvantages out;
  const at::Tensor valid = Valid(mask);
  out.advantages = at::where(valid, returns, ZeroLike(returns));
  out.mean = global_moments.Mean();
  out.std = std::sqrt(global_moments.PopulationVariance());
  out.filter.valid_tokens = valid.sum().item<int64_t>();
  return out;
}

WhitenedAdvantages ComputeAdvantages(const RolloutBatch& batch, const AdvantageConfig& config) {
  const at::Tensor returns = ComputeReturns(batch, config);
  return FinalizeAdvantages(returns, batch.mask, ComputeMaskedMoments(returns, batch.mask), config);
}

}  // namespace r1r::rl
