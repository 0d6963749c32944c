#include "common/rl/config.h"

#include <array>
#include <string>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"

namespace r1r::rl {
namespace {

constexpr std::array<std::pair<Algorithm, std::string_view>, 7> kNames = {{
    {Algorithm::kStableReinforce, "stable_reinforce"},
    {Algorithm::kReinforcePlusPlus, "reinforce_pp"},
    {Algorithm::kStableReinforceNoPreClip, "stable_reinforce_no_preclip"},
    {Algorithm::kStableReinforceNoFilter, "stable_reinforce_no_filter"},
    {Algorithm::kStableReinforceReleasedCode, "stable_reinforce_released_code"},
    {Algorithm::kGrpo, "grpo"},
    {Algorithm::kRloo, "rloo"},
}};

}  // namespace

RlAlgorithmConfig ConfigFor(Algorithm algorithm, int group_size) {
  RlAlgorithmConfig config;  // defaults are StableReinforce
  config.advantage.group_size = group_size;
  switch (algorithm) {
    case Algorithm::kStableReinforce:
      break;
    case Algorithm::kReinforcePlusPlus:
      config.advantage.filter.enabled = false;
      config.loss.pre_clip.enabled = false;
      break;
    case Algorithm::kStableReinforceNoPreClip:
      config.loss.pre_clip.enabled = false;
      break;
    case Algorithm::kStableReinforceNoFilter:
      config.advantage.filter.enabled = false;
      break;
    case Algorithm::kStableReinforceReleasedCode:
      config.advantage.filter.window = FilterWindow::kReleasedCodeMeanShift;
      break;
    case Algorithm::kGrpo:
      // Group normalisation replaces the global whitening; the filter needs whitened z-scores.
      config.advantage.estimator = AdvantageEstimator::kGroupNorm;
      config.advantage.whiten = false;
      config.advantage.filter.enabled = false;
      config.loss.pre_clip.enabled = false;
      break;
    case Algorithm::kRloo:
      // OpenRLHF 0.6 (the fork's base) whitens every estimator except group_norm.
      config.advantage.estimator = AdvantageEstimator::kRloo;
      config.advantage.filter.enabled = false;
      config.loss.pre_clip.enabled = false;
      break;
  }
  return config;
}

std::string_view AlgorithmName(Algorithm algorithm) {
  for (const auto& [a, name] : kNames) {
    if (a == algorithm) return name;
  }
  return "unknown";
}

absl::StatusOr<Algorithm> ParseAlgorithm(std::string_view name) {
  for (const auto& [a, n] : kNames) {
    if (n == name) return a;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown RL algorithm '", std::string(name),
      "'; expected one of stable_reinforce, reinforce_pp, stable_reinforce_no_preclip, "
      "stable_reinforce_no_filter, stable_reinforce_released_code, grpo, rloo"));
}

absl::Status Validate(const RlAlgorithmConfig& config) {
  const AdvantageConfig& a = config.advantage;
  const PolicyLossConfig& l = config.loss;
  if (!(a.gamma > 0.0 && a.gamma <= 1.0)) return absl::InvalidArgumentError("gamma must be in (0, 1]");
  if (!(a.kl_coef >= 0.0)) return absl::InvalidArgumentError("kl_coef must be >= 0");
  if (!(a.reward_clip_min < a.reward_clip_max)) {
    return absl::InvalidArgumentError("reward_clip_min must be < reward_clip_max");
  }
  if (!(a.whiten_var_floor > 0.0)) return absl::InvalidArgumentError("whiten_var_floor must be > 0");
  if (a.group_size < 1) return absl::InvalidArgumentError("group_size must be >= 1");
  if (a.estimator != AdvantageEstimator::kReinforce && a.group_size < 2) {
    return absl::InvalidArgumentError("group_norm and rloo need group_size >= 2 samples per prompt");
  }
  if (a.filter.enabled && !a.whiten) {
    return absl::InvalidArgumentError("the advantage filter works on whitened z-scores: enable whiten");
  }
  if (a.filter.enabled && !(a.filter.threshold > 0.0)) {
    return absl::InvalidArgumentError("filter threshold must be > 0");
  }
  if (l.pre_clip.enabled && !(l.pre_clip.ratio_min > 0.0 && l.pre_clip.ratio_min < 1.0 &&
                              l.pre_clip.ratio_max > 1.0 && std::isfinite(l.pre_clip.ratio_max))) {
    return absl::InvalidArgumentError("pre-clip needs 0 < ratio_min < 1 < ratio_max < inf");
  }
  if (!(l.clip_eps_low > 0.0 && l.clip_eps_low < 1.0 && l.clip_eps_high > 0.0)) {
    return absl::InvalidArgumentError("clip eps must satisfy 0 < low < 1 and high > 0");
  }
  return absl::OkStatus();
}

}  // namespace r1r::rl
