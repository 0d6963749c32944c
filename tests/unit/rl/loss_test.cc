// The pre-clipped PPO loss and the SFT cross-entropy: hand-computed values, overflow behaviour,
// float64 finite-difference gradients, padding invariance.
#include <cmath>
#include <functional>
#include <tuple>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/rl/config.h"
#include "common/rl/loss.h"

namespace r1r::rl {
namespace {

// Central finite differences of f at x (float64), compared with autograd.
void ExpectGradientMatchesFiniteDifferences(const std::function<torch::Tensor(const torch::Tensor&)>& f,
                                            const torch::Tensor& x0, double tol) {
  torch::Tensor x = x0.clone().set_requires_grad(true);
  f(x).backward();
  const torch::Tensor analytic = x.grad().clone();
  const double h = 1e-6;
  torch::NoGradGuard no_grad;
  torch::Tensor flat = x0.clone().contiguous();
  double* p = flat.data_ptr<double>();
  for (int64_t i = 0; i < flat.numel(); ++i) {
    const double keep = p[i];
    p[i] = keep + h;
    const double up = f(flat).item<double>();
    p[i] = keep - h;
    const double down = f(flat).item<double>();
    p[i] = keep;
    const double numeric = (up - down) / (2 * h);
    EXPECT_NEAR(analytic.view(-1)[i].item<double>(), numeric, tol) << "element " << i;
  }
}

TEST(rl, PolicyLossHandComputedValueAndDiagnostics) {
  // log-ratios 0, ln 1.5, ln 0.5, 10 (pre-clipped to ln 1000) with advantages 1, 1, 1, -1.
  const torch::Tensor logp_old = torch::zeros({1, 4}, torch::kFloat64);
  const torch::Tensor logp = torch::tensor({{0.0, std::log(1.5), std::log(0.5), 10.0}}, torch::kFloat64);
  const torch::Tensor adv = torch::tensor({{1.0, 1.0, 1.0, -1.0}}, torch::kFloat64);
  const torch::Tensor mask = torch::ones({1, 4}, torch::kBool);
  const PolicyLossResult r = PolicyLoss(logp, logp_old, adv, mask, PolicyLossConfig{});
  // per token: -min(1, 1) = -1; -min(1.5, 1.2) = -1.2; -min(0.5, 0.8) = -0.5; -min(-1000, -1.2) = 1000
  EXPECT_NEAR(r.loss.item<double>(), (-1.0 - 1.2 - 0.5 + 1000.0) / 4.0, 1e-9);
  EXPECT_DOUBLE_EQ(r.diagnostics.clip_fraction, 0.25);
  EXPECT_DOUBLE_EQ(r.diagnostics.pre_clip_fraction, 0.25);
  EXPECT_NEAR(r.diagnostics.ratio_min, 0.5, 1e-12);
  EXPECT_NEAR(r.diagnostics.ratio_max, 1000.0, 1e-9);
  EXPECT_EQ(r.diagnostics.valid_tokens, 4);
  // approx KL: mean k3 of KL(old || new) with lr = logp_old - logp (raw, not pre-clipped)
  double kl = 0.0;
  for (double ld : {0.0, std::log(1.5), std::log(0.5), 10.0}) kl += std::exp(ld) - 1.0 - ld;
  EXPECT_NEAR(r.diagnostics.approx_kl, kl / 4.0, 1e-6);
}

TEST(rl, AsymmetricClipAndAggregations) {
  const torch::Tensor logp_old = torch::zeros({2, 3}, torch::kFloat64);
  const torch::Tensor logp = torch::full({2, 3}, std::log(1.5), torch::kFloat64);
  const torch::Tensor adv = torch::ones({2, 3}, torch::kFloat64);
  const torch::Tensor mask = torch::tensor({{1, 0, 0}, {1, 1, 1}});
  PolicyLossConfig config;
  config.clip_eps_high = 0.3;  // ratio 1.5 clipped at 1.3
  const double per_seq = PolicyLoss(logp, logp_old, adv, mask, config).loss.item<double>();
  EXPECT_NEAR(per_seq, -1.3, 1e-12);
  // Token-level weighting with a row of 1 token and a row of 3: the weights differ once values do.
  torch::Tensor adv2 = adv.clone();
  adv2[0][0] = 3.0;
  const double seq_mean = PolicyLoss(logp, logp_old, adv2, mask, config).loss.item<double>();
  config.aggregation = LossAggregation::kGlobalTokenMean;
  const double tok_mean = PolicyLoss(logp, logp_old, adv2, mask, config).loss.item<double>();
  EXPECT_NEAR(seq_mean, -(3.9 + 1.3) / 2.0, 1e-12);
  EXPECT_NEAR(tok_mean, -(3.9 + 3 * 1.3) / 4.0, 1e-12);
  const double with_global = PolicyLoss(logp, logp_old, adv2, mask, config, false, 8.0).loss.item<double>();
  EXPECT_NEAR(with_global, -(3.9 + 3 * 1.3) / 8.0, 1e-12);
}

TEST(rl, PreClipKeepsLossAndGradientsFiniteAtLogRatio50) {
  const torch::Tensor logp_old = torch::zeros({1, 4});
  const torch::Tensor adv = torch::tensor({{1.0f, -1.0f, 1.0f, -1.0f}});
  const torch::Tensor mask = torch::ones({1, 4}, torch::kBool);
  const auto run = [&](double magnitude, bool pre_clip) {
    torch::Tensor logp =
        torch::tensor({{magnitude, magnitude, -magnitude, -magnitude}}).to(torch::kFloat32).set_requires_grad(true);
    PolicyLossConfig config;
    config.pre_clip.enabled = pre_clip;
    const PolicyLossResult r = PolicyLoss(logp, logp_old, adv, mask, config);
    r.loss.backward();
    return std::make_pair(r.loss.item<double>(), logp.grad().clone());
  };
  const auto [clipped_loss, clipped_grad] = run(50.0, true);
  EXPECT_TRUE(std::isfinite(clipped_loss));
  EXPECT_TRUE(clipped_grad.isfinite().all().item<bool>());
  EXPECT_LE(std::abs(clipped_loss), 1e3);  // bounded by delta_max * |A|
  EXPECT_NEAR(clipped_loss, (-1.2 + 1000.0 - 1e-3 + 0.8) / 4.0, 1e-3);

  const auto [raw_loss, raw_grad] = run(50.0, false);
  EXPECT_GT(raw_loss, 1e20);  // exp(50) * |A| = 5e21: the update such a loss drives is meaningless
  EXPECT_GT(raw_grad.abs().max().item<double>(), 1e20);
  const auto [overflow_loss, overflow_grad] = run(100.0, false);
  EXPECT_FALSE(std::isfinite(overflow_loss));  // exp(100) overflows float32
  const auto [still_finite, still_finite_grad] = run(100.0, true);
  EXPECT_TRUE(std::isfinite(still_finite));
  EXPECT_TRUE(still_finite_grad.isfinite().all().item<bool>());
}

TEST(rl, PolicyLossGradientMatchesFiniteDifferences) {
  torch::manual_seed(11);
  const torch::Tensor logp_old = torch::randn({3, 5}, torch::kFloat64) * 0.5;
  // Mix of tokens inside and outside the PPO clip band and one beyond the pre-clip bound.
  torch::Tensor logp0 = logp_old + torch::randn({3, 5}, torch::kFloat64) * 0.4;
  logp0[2][1] = logp_old[2][1].item<double>() + 9.0;
  const torch::Tensor adv = torch::randn({3, 5}, torch::kFloat64);
  torch::Tensor mask = torch::ones({3, 5}, torch::kBool);
  mask.index_put_({1, torch::indexing::Slice(2)}, false);
  for (LossAggregation agg : {LossAggregation::kSequenceMeanOfTokenMeans, LossAggregation::kGlobalTokenMean}) {
    for (bool pre_clip : {true, false}) {
      PolicyLossConfig config;
      config.aggregation = agg;
      config.pre_clip.enabled = pre_clip;
      config.clip_eps_high = 0.28;
      ExpectGradientMatchesFiniteDifferences(
          [&](const torch::Tensor& logp) { return PolicyLoss(logp, logp_old, adv, mask, config, false).loss; },
          logp0, 1e-6);
    }
  }
}

TEST(rl, PolicyLossIgnoresPaddingWhateverItHolds) {
  torch::manual_seed(5);
  const torch::Tensor logp_old = torch::randn({2, 4}, torch::kFloat64);
  const torch::Tensor logp0 = logp_old + 0.3 * torch::randn({2, 4}, torch::kFloat64);
  const torch::Tensor adv = torch::randn({2, 4}, torch::kFloat64);
  const torch::Tensor mask = torch::tensor({{1, 1, 1, 0}, {1, 1, 1, 1}});
  const auto pad = [](const torch::Tensor& t, double fill) {
    return torch::cat({t, torch::full({2, 6}, fill, t.options())}, 1);
  };
  for (LossAggregation agg : {LossAggregation::kSequenceMeanOfTokenMeans, LossAggregation::kGlobalTokenMean}) {
    PolicyLossConfig config;
    config.aggregation = agg;
    torch::Tensor a = logp0.clone().set_requires_grad(true);
    const auto base = PolicyLoss(a, logp_old, adv, mask, config);
    base.loss.backward();

    torch::Tensor b = pad(logp0, 80.0).clone();
    b[0][3] = std::nan("");  // garbage inside the original width too
    b.set_requires_grad(true);
    const auto padded = PolicyLoss(b, pad(logp_old, -1e30), pad(adv, std::nan("")), pad(mask, 0), config);
    padded.loss.backward();
    EXPECT_NEAR(padded.loss.item<double>(), base.loss.item<double>(), 1e-12);
    EXPECT_TRUE(b.grad().isfinite().all().item<bool>());
    EXPECT_TRUE(torch::allclose(b.grad().slice(1, 0, 4), a.grad(), 1e-12, 1e-12));
    EXPECT_EQ(b.grad().slice(1, 4).abs().sum().item<double>(), 0.0);
    EXPECT_DOUBLE_EQ(padded.diagnostics.ratio_max, base.diagnostics.ratio_max);
    EXPECT_EQ(padded.diagnostics.valid_tokens, 7);
  }
}

TEST(rl, SftCrossEntropyValueAndGradient) {
  torch::manual_seed(2);
  const torch::Tensor logits0 = torch::randn({2, 3, 5}, torch::kFloat64);
  const torch::Tensor labels = torch::tensor({{1, 4, -100}, {0, 2, 3}}, torch::kInt64);
  const torch::Tensor mask = torch::tensor({{1, 1, 0}, {0, 1, 1}});
  const SftLossResult r = SftCrossEntropy(logits0, labels, mask);
  EXPECT_EQ(r.tokens, 4);
  double expected = 0.0;
  const std::pair<int, int> positions[] = {{0, 0}, {0, 1}, {1, 1}, {1, 2}};
  for (auto [b, t] : positions) {
    const torch::Tensor row = logits0[b][t];
    const double lse = std::log(row.exp().sum().item<double>());
    expected += lse - row[labels[b][t].item<int64_t>()].item<double>();
  }
  EXPECT_NEAR(r.loss.item<double>(), expected / 4.0, 1e-12);
  ExpectGradientMatchesFiniteDifferences(
      [&](const torch::Tensor& logits) { return SftCrossEntropy(logits, labels, mask).loss; }, logits0, 1e-7);
}

TEST(rl, TensorOpPathMatchesCpuLoops) {
  // bfloat16 takes the device-generic tensor-op path of the pre-clip; float64 the fused CPU loops.
  torch::manual_seed(13);
  const torch::Tensor logp_old = torch::randn({3, 6}).to(torch::kBFloat16).to(torch::kFloat64);
  torch::Tensor delta = torch::randn({3, 6}) * 0.3;
  delta[0][0] = 9.0;
  delta[1][2] = -8.0;
  const torch::Tensor logp0 = (logp_old + delta.to(torch::kFloat64)).to(torch::kBFloat16).to(torch::kFloat64);
  const torch::Tensor adv = torch::randn({3, 6}).to(torch::kBFloat16).to(torch::kFloat64);
  const torch::Tensor mask = torch::tensor({{1, 1, 1, 1, 0, 0}, {1, 1, 1, 1, 1, 1}, {1, 0, 0, 0, 0, 0}});
  const auto run = [&](torch::ScalarType dtype) {
    torch::Tensor logp = logp0.to(dtype).clone().set_requires_grad(true);
    const PolicyLossResult r = PolicyLoss(logp, logp_old.to(dtype), adv.to(dtype), mask, PolicyLossConfig{});
    r.loss.backward();
    return std::make_tuple(r.loss.item<double>(), logp.grad().to(torch::kFloat64), r.diagnostics);
  };
  const auto [loss64, grad64, diag64] = run(torch::kFloat64);
  const auto [loss16, grad16, diag16] = run(torch::kBFloat16);
  EXPECT_NEAR(loss16, loss64, 0.05 * std::max(1.0, std::abs(loss64)));
  EXPECT_TRUE(torch::allclose(grad16, grad64, 0.05, 0.02));
  EXPECT_EQ(diag16.pre_clip_fraction, diag64.pre_clip_fraction);
  EXPECT_DOUBLE_EQ(diag64.pre_clip_fraction, 2.0 / 11.0);
  EXPECT_EQ(grad64[0][0].item<double>(), 0.0);  // beyond the pre-clip bound: no gradient
}

}  // namespace
}  // namespace r1r::rl
