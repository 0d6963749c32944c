// Configuration of the RL algorithm: StableReinforce and the baselines of the paper's ablation
// (Table 6), selected by one enum so a job config can switch between them. Torch-free.
#pragma once

#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace r1r::rl {

// Per-token KL estimators of KL(pi || pi_ref) from samples of pi, with lr = logp - logp_ref.
enum class KlEstimator { kK1, kK2, kK3 };

// How the scalar sequence reward becomes an advantage before whitening.
enum class AdvantageEstimator {
  kReinforce,  // raw reward (Reinforce++, StableReinforce): global whitening is the only baseline
  kGroupNorm,  // GRPO: (R - mean_group) / (std_group + eps), no global whitening
  kRloo,       // RLOO: R - mean of the other samples of the same prompt
};

// The 3-sigma advantage filter window.
enum class FilterWindow {
  kPaperSymmetric,         // keep z when |z| <= threshold (paper §4.1)
  kReleasedCodeMeanShift,  // released code: keep when mean-3 <= z <= mean+3 and |z| <= 10
};

enum class LossAggregation {
  kSequenceMeanOfTokenMeans,  // paper and released code: token mean per sequence, then sequence mean
  kGlobalTokenMean,           // sum over all valid tokens / number of valid tokens
};

struct AdvantageFilterConfig {
  bool enabled = true;
  double threshold = 3.0;
  FilterWindow window = FilterWindow::kPaperSymmetric;
};

struct PreClipConfig {
  bool enabled = true;
  double ratio_min = 1e-3;  // delta_min: the log-ratio is clamped to [ln ratio_min, ln ratio_max] before exp
  double ratio_max = 1e3;
};

struct PolicyLossConfig {
  PreClipConfig pre_clip;
  double clip_eps_low = 0.2;   // ratio clipped to [1 - low, 1 + high]
  double clip_eps_high = 0.2;
  LossAggregation aggregation = LossAggregation::kSequenceMeanOfTokenMeans;
};

struct AdvantageConfig {
  AdvantageEstimator estimator = AdvantageEstimator::kReinforce;
  KlEstimator kl_estimator = KlEstimator::kK1;
  double kl_coef = 0.0;  // beta; the paper uses 0, the released script 1e-3
  double gamma = 1.0;
  double reward_clip_min = -10.0;
  double reward_clip_max = 10.0;
  bool whiten = true;              // global masked whitening over all valid tokens of the rollout
  double whiten_var_floor = 1e-8;  // rstd = rsqrt(max(var, floor))
  int group_size = 1;              // samples per prompt, contiguous in the batch (GRPO, RLOO)
  double group_std_eps = 1e-9;
  AdvantageFilterConfig filter;
};

struct RlAlgorithmConfig {
  AdvantageConfig advantage;
  PolicyLossConfig loss;
};

// The paper's variants (Table 6) and the group baselines.
enum class Algorithm {
  kStableReinforce,
  kReinforcePlusPlus,          // no pre-clip, no filter
  kStableReinforceNoPreClip,
  kStableReinforceNoFilter,
  kStableReinforceReleasedCode,  // filter window as in the released code (mean +- 3)
  kGrpo,
  kRloo,
};

RlAlgorithmConfig ConfigFor(Algorithm algorithm, int group_size = 1);
std::string_view AlgorithmName(Algorithm algorithm);
absl::StatusOr<Algorithm> ParseAlgorithm(std::string_view name);
absl::Status Validate(const RlAlgorithmConfig& config);

}  // namespace r1r::rl
