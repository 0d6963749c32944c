// Losses: the pre-clipped PPO policy loss of StableReinforce (and its ablations through the config)
// and the masked token cross-entropy of the SFT cold start.
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

#include "common/rl/config.h"

namespace r1r::rl {

struct PolicyLossDiagnostics {
  double clip_fraction = 0.0;      // valid tokens where the PPO clip was active (clipped term chosen)
  double pre_clip_fraction = 0.0;  // valid tokens whose log-ratio hit the pre-clip bounds
  double approx_kl = 0.0;          // mean k3 estimate of KL(pi_old || pi_theta) over valid tokens
  double ratio_min = 0.0;          // over valid tokens, after pre-clip
  double ratio_max = 0.0;
  int64_t valid_tokens = 0;
};

struct PolicyLossResult {
  at::Tensor loss;  // scalar, differentiable w.r.t. logp
  PolicyLossDiagnostics diagnostics;
};

// ld = logp - logp_old, clamped to [ln ratio_min, ln ratio_max] BEFORE exp when pre-clip is on;
// ratio = exp(ld); loss_t = -min(ratio * A, clamp(ratio, 1 - eps_low, 1 + eps_high) * A);
// aggregated per `config.aggregation`. All [B, T]; `mask` bool or {0,1}.
// `global_token_count` > 0 replaces the local token count of kGlobalTokenMean (data-parallel ranks).
PolicyLossResult PolicyLoss(const at::Tensor& logp, const at::Tensor& logp_old, const at::Tensor& advantages,
                            const at::Tensor& mask, const PolicyLossConfig& config,
                            bool compute_diagnostics = true, double global_token_count = 0.0);

struct SftLossResult {
  at::Tensor loss;  // scalar: mean token cross-entropy over response tokens
  int64_t tokens = 0;
};

// logits [B, T, V] predicting labels [B, T] (int64); only positions with label_mask set count, and the
// label values there may be anything (e.g. -100) elsewhere.
SftLossResult SftCrossEntropy(const at::Tensor& logits, const at::Tensor& labels, const at::Tensor& label_mask);

}  // namespace r1r::rl
