// From sequence rewards to per-token advantages: KL estimators, token rewards, discounted returns,
// group baselines (GRPO, RLOO), global masked whitening and the 3-sigma advantage filter.
//
// Shapes: B sequences x T response tokens; `mask` is bool or {0,1} [B, T] and marks valid action
// tokens (including the generated EOS, which receives the reward). Values at masked-out positions
// may be anything (even NaN): they never reach a result or a gradient.
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

#include "common/rl/config.h"

namespace r1r::rl {

// Per-token KL estimate between the policy and a reference, zero at padding.
// k1 = lr, k2 = lr^2 / 2, k3 = exp(-lr) - 1 + lr, with lr = logp - logp_ref.
at::Tensor ApproxKl(const at::Tensor& logp, const at::Tensor& logp_ref, const at::Tensor& mask,
                    KlEstimator estimator);

// Index [B] of the last valid token of each row (T-1 for an all-padding row).
at::Tensor LastValidIndex(const at::Tensor& mask);

// r_t = -kl_coef * kl_t, plus clamp(R, clip_min, clip_max) at the last valid token; 0 at padding.
// `kl` may be undefined when kl_coef == 0. Returns float32 [B, T] (float64 if `sequence_reward` is).
at::Tensor TokenRewards(const at::Tensor& sequence_reward, const at::Tensor& kl, const at::Tensor& mask,
                        double kl_coef, double clip_min, double clip_max);

// G_t = r_t + gamma * G_{t+1} over valid tokens; 0 at padding.
at::Tensor DiscountedReturns(const at::Tensor& token_rewards, const at::Tensor& mask, double gamma);

// Group baselines on scalar rewards [B], groups of `group_size` contiguous samples per prompt.
at::Tensor GroupNormalizedRewards(const at::Tensor& sequence_reward, int group_size, double eps);
at::Tensor LeaveOneOutRewards(const at::Tensor& sequence_reward, int group_size);

// Sufficient statistics of the masked values, in float64, so ranks can all-reduce (sum) them and
// get exactly the single-process mean and population variance.
struct MaskedMoments {
  double count = 0.0;
  double sum = 0.0;
  double sum_squares = 0.0;

  double Mean() const;
  double PopulationVariance() const;  // E[x^2] - E[x]^2, never negative
  MaskedMoments& operator+=(const MaskedMoments& other);
  at::Tensor ToTensor() const;  // float64 [3] = {count, sum, sum_squares}, for all_reduce(SUM)
  static MaskedMoments FromTensor(const at::Tensor& packed);
};

MaskedMoments ComputeMaskedMoments(const at::Tensor& values, const at::Tensor& mask);

struct FilterStats {
  int64_t valid_tokens = 0;
  int64_t filtered_tokens = 0;   // valid tokens whose advantage the filter set to 0 (non-finite included)
  int64_t nonfinite_tokens = 0;  // valid tokens whose z-score was NaN or +-Inf
  double FilteredFraction() const;
};

struct WhitenedAdvantages {
  at::Tensor advantages;  // [B, T], 0 at padding and at filtered tokens
  double mean = 0.0;
  double std = 0.0;
  FilterStats filter;
};

// z = (x - mean) * rsqrt(max(var, floor)) from the (global) moments, then the filter of `config`.
WhitenedAdvantages WhitenAndFilter(const at::Tensor& values, const at::Tensor& mask,
                                   const MaskedMoments& global_moments, const AdvantageConfig& config);

// The rollout as the learner sees it.
struct RolloutBatch {
  at::Tensor sequence_reward;  // [B] scalar reward per sequence (format + result + consistency)
  at::Tensor mask;             // [B, T]
  at::Tensor logp_old;         // [B, T], needed only when kl_coef > 0
  at::Tensor logp_ref;         // [B, T], needed only when kl_coef > 0
};

// Step 1 of the advantage computation: group baseline, token rewards and returns ([B, T]).
at::Tensor ComputeReturns(const RolloutBatch& batch, const AdvantageConfig& config);

// Step 2: whitening with moments that the caller may have all-reduced over ranks (and the filter);
// without whitening the returns are the advantages.
WhitenedAdvantages FinalizeAdvantages(const at::Tensor& returns, const at::Tensor& mask,
                                      const MaskedMoments& global_moments, const AdvantageConfig& config);

// Single-process convenience: ComputeReturns, local moments, FinalizeAdvantages.
WhitenedAdvantages ComputeAdvantages(const RolloutBatch& batch, const AdvantageConfig& config);

}  // namespace r1r::rl
