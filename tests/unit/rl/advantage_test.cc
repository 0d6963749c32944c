// Advantages: the paper's example, the filter variants, token rewards/returns against float64 loops,
// group baselines, and the all-reduce property of the whitening statistics.
#include <cmath>
#include <limits>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/rl/advantage.h"
#include "common/rl/config.h"

namespace r1r::rl {
namespace {

torch::Tensor F64(std::initializer_list<double> v) {
  return torch::tensor(std::vector<double>(v), torch::kFloat64);
}

TEST(rl, PaperExampleAdvantage) {
  // 255 rewards of 1 and one of 0 (paper §4.1): the lonely 0 is -sqrt(255) = -15.97 sigma away.
  torch::Tensor reward = torch::ones({256}, torch::kFloat32);
  reward[255] = 0.0;
  const RolloutBatch batch{reward, torch::ones({256, 4}, torch::kBool), {}, {}};

  AdvantageConfig no_filter = ConfigFor(Algorithm::kStableReinforceNoFilter).advantage;
  const WhitenedAdvantages raw = ComputeAdvantages(batch, no_filter);
  // beta = 0, gamma = 1: every token of a sequence carries the sequence reward.
  EXPECT_NEAR(raw.advantages[255][0].item<double>(), -std::sqrt(255.0), 1e-4);
  EXPECT_NEAR(raw.advantages[255][0].item<double>(), -15.96, 0.01);
  EXPECT_NEAR(raw.advantages[0][3].item<double>(), 1.0 / std::sqrt(255.0), 1e-5);
  EXPECT_EQ(raw.filter.filtered_tokens, 0);

  const WhitenedAdvantages filtered = ComputeAdvantages(batch, ConfigFor(Algorithm::kStableReinforce).advantage);
  EXPECT_EQ(filtered.advantages[255].abs().sum().item<double>(), 0.0);
  EXPECT_NEAR(filtered.advantages[0][0].item<double>(), 1.0 / std::sqrt(255.0), 1e-5);
  EXPECT_EQ(filtered.filter.valid_tokens, 1024);
  EXPECT_EQ(filtered.filter.filtered_tokens, 4);
  EXPECT_DOUBLE_EQ(filtered.filter.FilteredFraction(), 4.0 / 1024.0);
}

TEST(rl, SigmaFilterDropsEveryWrongRolloutOnceNineInTenAreRight) {
  // Two reward values (the demo's 2.0 right, 0.5 wrong): a wrong rollout sits at z = -sqrt(p / (1 - p))
  // for a share p of right ones, past -3 exactly when p > 0.9. Then the 3-sigma filter leaves a batch
  // with no negative example at all (seen in the demo's RL steps: filtered fraction = wrong fraction).
  for (const int wrong : {3, 4}) {
    torch::Tensor reward = torch::full({32}, 2.0, torch::kFloat32);
    reward.narrow(0, 0, wrong).fill_(0.5);
    const RolloutBatch batch{reward, torch::ones({32, 4}, torch::kBool), {}, {}};
    const WhitenedAdvantages a = ComputeAdvantages(batch, ConfigFor(Algorithm::kStableReinforce).advantage);
    const double p = (32.0 - wrong) / 32.0;
    if (wrong == 3) {  // p = 0.906: z = -3.11, all three dropped
      EXPECT_EQ(a.filter.filtered_tokens, 3 * 4);
      EXPECT_EQ(a.advantages.narrow(0, 0, wrong).abs().sum().item<double>(), 0.0);
    } else {  // p = 0.875: z = -2.65, kept
      EXPECT_EQ(a.filter.filtered_tokens, 0);
      EXPECT_NEAR(a.advantages[0][0].item<double>(), -std::sqrt(p / (1.0 - p)), 1e-4);
    }
    EXPECT_GT(a.advantages[31][0].item<double>(), 0.0);  // the right ones always stay
  }
}

TEST(rl, FilterZeroesNonFiniteAndReportsIt) {
  AdvantageConfig config;  // paper filter
  const MaskedMoments moments{4.0, 0.0, 4.0};  // mean 0, variance 1
  const torch::Tensor values = torch::tensor({{0.5, std::numeric_limits<double>::quiet_NaN(),
                                               std::numeric_limits<double>::infinity(), -3.0, 3.5}},
                                             torch::kFloat64);
  const torch::Tensor mask = torch::tensor({{1, 1, 1, 1, 0}});
  const WhitenedAdvantages out = WhitenAndFilter(values, mask, moments, config);
  EXPECT_TRUE(torch::allclose(out.advantages, torch::tensor({{0.5, 0.0, 0.0, -3.0, 0.0}}, torch::kFloat64)));
  EXPECT_EQ(out.filter.valid_tokens, 4);
  EXPECT_EQ(out.filter.filtered_tokens, 2);
  EXPECT_EQ(out.filter.nonfinite_tokens, 2);
}

TEST(rl, WhiteningTensorOpPathMatchesCpuLoop) {
  // bfloat16 values take the device-generic path; float64 the fused CPU loop.
  const MaskedMoments moments{6.0, 3.0, 30.0};  // mean 0.5, variance 4.75
  const torch::Tensor values = torch::tensor({{0.5, 4.0, -7.0, 1.0}, {9.0, 2.0, -1.0, 100.0}}, torch::kFloat64);
  const torch::Tensor mask = torch::tensor({{1, 1, 1, 1}, {1, 1, 0, 0}});
  for (FilterWindow window : {FilterWindow::kPaperSymmetric, FilterWindow::kReleasedCodeMeanShift}) {
    AdvantageConfig config;
    config.filter.window = window;
    const WhitenedAdvantages a = WhitenAndFilter(values, mask, moments, config);
    const WhitenedAdvantages b = WhitenAndFilter(values.to(torch::kBFloat16), mask, moments, config);
    EXPECT_TRUE(torch::allclose(b.advantages.to(torch::kFloat64), a.advantages, 0.02, 0.02));
    EXPECT_EQ(a.filter.filtered_tokens, b.filter.filtered_tokens);
    EXPECT_EQ(a.filter.valid_tokens, 6);
  }
  // z = (9 - 0.5) / sqrt(4.75) = 3.9: the paper window drops it, the released-code window [-2.5, 3.5] too,
  // and z = -7.5 / 2.18 = -3.44 is dropped by both.
  const WhitenedAdvantages paper = WhitenAndFilter(values, mask, moments, AdvantageConfig{});
  EXPECT_EQ(paper.filter.filtered_tokens, 2);
  EXPECT_NEAR(paper.advantages[0][1].item<double>(), 3.5 / std::sqrt(4.75), 1e-12);
}

TEST(rl, ReleasedCodeFilterWindowIsShiftedByTheMean) {
  // mean 1, variance 1: x = -1.5 gives z = -2.5, inside [-3, 3] but outside [mean-3, mean+3] = [-2, 4].
  const MaskedMoments moments{2.0, 2.0, 4.0};
  const torch::Tensor values = F64({-1.5, 4.5}).unsqueeze(0);  // z = -2.5 and 3.5
  const torch::Tensor mask = torch::ones({1, 2}, torch::kBool);
  AdvantageConfig paper;
  AdvantageConfig released = ConfigFor(Algorithm::kStableReinforceReleasedCode).advantage;
  const WhitenedAdvantages p = WhitenAndFilter(values, mask, moments, paper);
  const WhitenedAdvantages r = WhitenAndFilter(values, mask, moments, released);
  EXPECT_TRUE(torch::allclose(p.advantages, F64({-2.5, 0.0}).unsqueeze(0)));
  EXPECT_TRUE(torch::allclose(r.advantages, F64({0.0, 3.5}).unsqueeze(0)));
}

TEST(rl, KlEstimators) {
  const torch::Tensor logp = F64({0.5, -1.0, 7.0}).unsqueeze(0);
  const torch::Tensor ref = F64({0.0, 0.0, std::nan("")}).unsqueeze(0);
  const torch::Tensor mask = torch::tensor({{1, 1, 0}});
  const auto k1 = ApproxKl(logp, ref, mask, KlEstimator::kK1);
  const auto k2 = ApproxKl(logp, ref, mask, KlEstimator::kK2);
  const auto k3 = ApproxKl(logp, ref, mask, KlEstimator::kK3);
  EXPECT_TRUE(torch::allclose(k1, F64({0.5, -1.0, 0.0}).unsqueeze(0)));
  EXPECT_TRUE(torch::allclose(k2, F64({0.125, 0.5, 0.0}).unsqueeze(0)));
  EXPECT_TRUE(torch::allclose(
      k3, F64({std::exp(-0.5) - 1.0 + 0.5, std::exp(1.0) - 1.0 - 1.0, 0.0}).unsqueeze(0)));
}

TEST(rl, TokenRewardsAndDiscountedReturnsMatchFloat64Loop) {
  // Row 0: 3 valid tokens; row 1: 5 valid tokens (reward clamped from 20 to 10).
  const torch::Tensor mask = torch::tensor({{1, 1, 1, 0, 0}, {1, 1, 1, 1, 1}});
  const torch::Tensor kl = torch::tensor({{0.1, -0.2, 0.3, 9.0, 9.0}, {0.5, 0.0, 0.0, 0.1, 0.2}}, torch::kFloat64);
  const torch::Tensor reward = F64({1.5, 20.0});
  const double beta = 0.1, gamma = 0.9;
  const torch::Tensor r = TokenRewards(reward, kl, mask, beta, -10.0, 10.0);
  const torch::Tensor g = DiscountedReturns(r, mask, gamma);

  const double expected_r[2][5] = {{-0.01, 0.02, -0.03 + 1.5, 0, 0}, {-0.05, 0, 0, -0.01, -0.02 + 10.0}};
  const int lengths[2] = {3, 5};
  for (int b = 0; b < 2; ++b) {
    double running = 0.0;
    double expected_g[5] = {0, 0, 0, 0, 0};
    for (int t = lengths[b] - 1; t >= 0; --t) expected_g[t] = running = expected_r[b][t] + gamma * running;
    for (int t = 0; t < 5; ++t) {
      EXPECT_NEAR(r[b][t].item<double>(), expected_r[b][t], 1e-12) << b << "," << t;
      EXPECT_NEAR(g[b][t].item<double>(), expected_g[t], 1e-12) << b << "," << t;
    }
  }
  // gamma = 1 takes the reverse-cumsum path; it must agree with the definition too.
  const torch::Tensor g1 = DiscountedReturns(r, mask, 1.0);
  EXPECT_NEAR(g1[0][0].item<double>(), -0.01 + 0.02 - 0.03 + 1.5, 1e-12);
  EXPECT_NEAR(g1[1][3].item<double>(), -0.01 - 0.02 + 10.0, 1e-12);
  EXPECT_EQ(g1[0][4].item<double>(), 0.0);
}

TEST(rl, GroupBaselines) {
  const torch::Tensor reward = F64({1.0, 0.0, 2.0, 2.0, 0.5, 1.5});
  const torch::Tensor grpo = GroupNormalizedRewards(reward, 2, 1e-9);
  const double s = 1.0 / std::sqrt(2.0);  // (x - mean) / unbiased std for a pair differing by d: +-1/sqrt(2)
  EXPECT_TRUE(torch::allclose(grpo, F64({s, -s, 0.0, 0.0, -s, s}), 1e-6, 1e-6));
  const torch::Tensor rloo = LeaveOneOutRewards(F64({1.0, 0.0, 0.5, 3.0, 3.0, 0.0}), 3);
  EXPECT_TRUE(torch::allclose(rloo, F64({0.75, -0.75, 0.0, 1.5, 1.5, -3.0})));
}

TEST(rl, GroupEstimatorsThroughTheWholePipeline) {
  // Two prompts x 2 samples, 3 tokens each (the second sample of prompt 2 has 2), beta = 0.
  const torch::Tensor reward = F64({1.0, 0.0, 2.0, 0.5});
  const torch::Tensor mask = torch::tensor({{1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {1, 1, 0}});
  const RlAlgorithmConfig grpo = ConfigFor(Algorithm::kGrpo, 2);
  ASSERT_TRUE(Validate(grpo).ok());
  const WhitenedAdvantages g = ComputeAdvantages({reward, mask, {}, {}}, grpo.advantage);
  const double s = 1.0 / std::sqrt(2.0);
  EXPECT_TRUE(torch::allclose(g.advantages, torch::tensor({{s, s, s}, {-s, -s, -s}, {s, s, s}, {-s, -s, 0.0}},
                                                          torch::kFloat64), 1e-6, 1e-6));
  // RLOO: R - mean(others) = {1, -1, 1.5, -1.5}, then global whitening over the 11 valid tokens.
  const RlAlgorithmConfig rloo = ConfigFor(Algorithm::kRloo, 2);
  const WhitenedAdvantages r = ComputeAdvantages({reward, mask, {}, {}}, rloo.advantage);
  const torch::Tensor baseline = torch::tensor({1.0, -1.0, 1.5, -1.5}, torch::kFloat64);
  const torch::Tensor tokens = baseline.unsqueeze(1).expand({4, 3}).masked_select(mask.to(torch::kBool));
  const double mean = tokens.mean().item<double>(), sd = tokens.std(/*unbiased=*/false).item<double>();
  EXPECT_NEAR(r.advantages[2][0].item<double>(), (1.5 - mean) / sd, 1e-9);
  EXPECT_NEAR(r.advantages[3][1].item<double>(), (-1.5 - mean) / sd, 1e-9);
  EXPECT_EQ(r.advantages[3][2].item<double>(), 0.0);
}

TEST(rl, AllReduceStatisticsOfTwoHalvesEqualWhole) {
  torch::manual_seed(7);
  const torch::Tensor returns = torch::randn({6, 9}, torch::kFloat64) * 2.0 + 0.7;
  torch::Tensor mask = torch::ones({6, 9}, torch::kBool);
  mask.index_put_({0, torch::indexing::Slice(4)}, false);
  mask.index_put_({4, torch::indexing::Slice(2)}, false);
  const MaskedMoments whole = ComputeMaskedMoments(returns, mask);
  const MaskedMoments a = ComputeMaskedMoments(returns.slice(0, 0, 2), mask.slice(0, 0, 2));
  const MaskedMoments b = ComputeMaskedMoments(returns.slice(0, 2), mask.slice(0, 2));
  // What an all_reduce(SUM) of the packed tensors gives.
  const MaskedMoments reduced = MaskedMoments::FromTensor(a.ToTensor() + b.ToTensor());
  EXPECT_EQ(reduced.count, whole.count);
  EXPECT_NEAR(reduced.Mean(), whole.Mean(), 1e-12);
  EXPECT_NEAR(reduced.PopulationVariance(), whole.PopulationVariance(), 1e-12);
  EXPECT_EQ(whole.count, 6 * 9 - 5 - 7);

  // Population variance against a direct float64 computation.
  const torch::Tensor x = returns.masked_select(mask);
  EXPECT_NEAR(whole.PopulationVariance(), x.var(/*unbiased=*/false).item<double>(), 1e-12);

  AdvantageConfig config;
  const auto full = FinalizeAdvantages(returns, mask, whole, config);
  const auto half_a = FinalizeAdvantages(returns.slice(0, 0, 2), mask.slice(0, 0, 2), reduced, config);
  const auto half_b = FinalizeAdvantages(returns.slice(0, 2), mask.slice(0, 2), reduced, config);
  EXPECT_TRUE(torch::allclose(torch::cat({half_a.advantages, half_b.advantages}), full.advantages, 1e-12, 1e-12));
}

TEST(rl, AdvantagesDoNotDependOnPaddingLength) {
  torch::manual_seed(3);
  const torch::Tensor reward = torch::rand({4}, torch::kFloat64) * 2.0;
  torch::Tensor mask = torch::ones({4, 6}, torch::kBool);
  mask.index_put_({1, torch::indexing::Slice(3)}, false);
  const torch::Tensor logp = torch::randn({4, 6}, torch::kFloat64);
  const torch::Tensor ref = torch::randn({4, 6}, torch::kFloat64);
  AdvantageConfig config;
  config.kl_coef = 0.05;
  config.kl_estimator = KlEstimator::kK3;
  const auto base = ComputeAdvantages({reward, mask, logp, ref}, config);

  const auto pad = [](const torch::Tensor& t, double fill) {
    return torch::cat({t, torch::full({t.size(0), 5}, fill, t.options())}, 1);
  };
  const auto padded = ComputeAdvantages(
      {reward, pad(mask, 0), pad(logp, std::nan("")), pad(ref, 1e30)}, config);
  EXPECT_TRUE(torch::allclose(padded.advantages.slice(1, 0, 6), base.advantages, 1e-12, 1e-12));
  EXPECT_EQ(padded.advantages.slice(1, 6).abs().sum().item<double>(), 0.0);
  EXPECT_EQ(padded.filter.valid_tokens, base.filter.valid_tokens);
}

TEST(rl, AlgorithmConfigsMatchTheAblation) {
  EXPECT_TRUE(Validate(ConfigFor(Algorithm::kStableReinforce)).ok());
  const RlAlgorithmConfig pp = ConfigFor(Algorithm::kReinforcePlusPlus);
  EXPECT_FALSE(pp.loss.pre_clip.enabled);
  EXPECT_FALSE(pp.advantage.filter.enabled);
  EXPECT_TRUE(pp.advantage.whiten);
  EXPECT_FALSE(ConfigFor(Algorithm::kStableReinforceNoPreClip).loss.pre_clip.enabled);
  EXPECT_TRUE(ConfigFor(Algorithm::kStableReinforceNoPreClip).advantage.filter.enabled);
  EXPECT_FALSE(Validate(ConfigFor(Algorithm::kGrpo)).ok());  // needs a group
  EXPECT_TRUE(Validate(ConfigFor(Algorithm::kGrpo, 4)).ok());
  EXPECT_TRUE(Validate(ConfigFor(Algorithm::kRloo, 2)).ok());
  for (Algorithm a : {Algorithm::kStableReinforce, Algorithm::kReinforcePlusPlus, Algorithm::kStableReinforceNoPreClip,
                      Algorithm::kStableReinforceNoFilter, Algorithm::kStableReinforceReleasedCode,
                      Algorithm::kGrpo, Algorithm::kRloo}) {
    auto parsed = ParseAlgorithm(AlgorithmName(a));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, a);
  }
  EXPECT_FALSE(ParseAlgorithm("ppo").ok());
  RlAlgorithmConfig bad;
  bad.loss.pre_clip.ratio_min = 2.0;
  EXPECT_FALSE(Validate(bad).ok());
}

}  // namespace
}  // namespace r1r::rl
