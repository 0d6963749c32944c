// The device sampler's top-k/top-p path (a cutoff search and a sort of the tokens above it, not of the
// vocabulary) against the reference sampler on adversarial rows, and its greedy log-probs against
// float64.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "common/model/sampler.h"
#include "gtest/gtest.h"

namespace r1r::model {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Draws that probe the whole kept set: the first token (u = 0), interior ones, and the last kept token
// with any mass (u just below 1), which pins down where the kept set ends.
const std::vector<double> kProbes = {0.0, 1e-9, 0.05, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999999, 1.0 - 0x1p-53};

struct Case {
  std::string name;
  at::Tensor logits;  // [V]
  SamplingParams params;
};

// Each case sampled by the device sampler (all probes in one call, so rows of one batch) equals
// SampleToken: the same token for every probe, the same behaviour log-prob and the same
// renormalised log-prob, hence the same kept mass. The last probe's token is the reference's last
// kept token, so the kept sets end at the same place.
void ExpectSameAsReference(const Case& c) {
  const auto rows = static_cast<int64_t>(kProbes.size());
  at::Tensor batch = c.logits.unsqueeze(0).expand({rows, c.logits.size(0)}).contiguous();
  const std::vector<SampledToken> got = SampleTokens(batch, std::vector<SamplingParams>(rows, c.params), kProbes);
  for (int64_t i = 0; i < rows; ++i) {
    const SampledToken ref = SampleToken(c.logits, c.params, kProbes[i]);
    EXPECT_EQ(got[i].token, ref.token) << c.name << ", u = " << kProbes[i];
    EXPECT_EQ(got[i].logprob, ref.logprob) << c.name << ", u = " << kProbes[i];
    EXPECT_NEAR(got[i].sampling_logprob, ref.sampling_logprob, 1e-6) << c.name << ", u = " << kProbes[i];
  }
}

TEST(model, DeviceTopPKeepsTheReferenceSetOnAdversarialRows) {
  torch::manual_seed(21);
  const int64_t V = 151936;
  std::vector<Case> cases;
  // Flat: every token tied, so the kept set is the lowest 90% of the ids.
  cases.push_back({"flat", torch::zeros({V}), {.top_p = 0.9}});
  cases.push_back({"nearly flat", torch::randn({V}) * 0.5, {.top_p = 0.9}});
  cases.push_back({"randn x 3 (the bench)", torch::randn({V}) * 3.0, {.top_p = 0.9}});
  cases.push_back({"randn x 3, T = 0.7", torch::randn({V}) * 3.0, {.temperature = 0.7, .top_p = 0.95}});
  // One dominant token: it alone reaches top_p; or almost (the next ones join).
  {
    at::Tensor x = torch::randn({V});
    x[4242] = 30.0f;
    cases.push_back({"dominant", x, {.top_p = 0.9}});
    cases.push_back({"dominant, top_p above its mass", x, {.top_p = 1.0 - 1e-7}});
  }
  // Ties at the cutoff: 10 equal tokens at scattered ids behind one larger token; top_p ends inside
  // the tie group, so only its lowest ids are kept.
  {
    at::Tensor x = torch::full({V}, -kInf);
    x[77] = std::log(4.0f);
    for (int64_t id : {150000, 3, 9000, 12, 77777, 500, 151935, 1, 60000, 42}) x[id] = 0.0f;
    cases.push_back({"ties at the cutoff", x, {.top_p = 0.4}});  // kept: 77, 1, 3 (mass before 12 is 6/14)
    cases.push_back({"ties at the cutoff, top-k 4", x, {.top_p = 0.9, .top_k = 4}});
    cases.push_back({"ties at the top-k cutoff", x, {.top_k = 6}});
  }
  // A tie group straddling the cutoff in a dense row.
  {
    at::Tensor x = torch::randn({V}) * 2.0;
    x.narrow(0, 1000, 2000).fill_(4.0f);
    cases.push_back({"dense tie group at the cutoff", x, {.top_p = 0.5}});
  }
  // top_p at its upper boundary: 1 is off (inverse CDF over everything); just below keeps almost all.
  {
    at::Tensor x = torch::randn({V}) * 3.0;
    cases.push_back({"top_p = 1 - 1e-6", x, {.top_p = 1.0 - 1e-6}});
    cases.push_back({"top_p just below 1", x, {.top_p = std::nextafter(1.0, 0.0)}});
    cases.push_back({"top_p just below 1, top-k 1000", x, {.top_p = std::nextafter(1.0, 0.0), .top_k = 1000}});
    cases.push_back({"tiny top_p", x, {.top_p = 1e-9}});
  }
  // Blocked ids (-inf, e.g. suppressed): never kept, even when top_p asks for almost everything.
  {
    at::Tensor x = torch::randn({V}) * 2.0;
    x.narrow(0, 0, V / 2).fill_(-kInf);
    cases.push_back({"half blocked", x, {.top_p = 0.95}});
    cases.push_back({"half blocked, top_p just below 1", x, {.top_p = std::nextafter(1.0, 0.0)}});
    at::Tensor three = torch::full({V}, -kInf);
    three[10] = 1.0f;
    three[20] = 1.0f;
    three[30] = 0.5f;
    cases.push_back({"three allowed", three, {.top_p = 0.999}});
    cases.push_back({"three allowed, top-k 2", three, {.top_k = 2}});
  }
  for (const Case& c : cases) ExpectSameAsReference(c);
}

TEST(model, DeviceTopPTiesResolveToTheLowerIds) {
  // Spelled out for the tie case above: 77 first, then the tied ids in ascending order until the
  // mass before a token reaches top_p (4/14, then + 1/14 each: 1 and 3 are kept, 12 is not).
  const int64_t V = 151936;
  at::Tensor x = torch::full({V}, -kInf);
  x[77] = std::log(4.0f);
  for (int64_t id : {150000, 3, 9000, 12, 77777, 500, 151935, 1, 60000, 42}) x[id] = 0.0f;
  const SamplingParams s{.top_p = 0.4};
  const std::vector<SampledToken> got =
      SampleTokens(x.unsqueeze(0).expand({3, V}).contiguous(), {s, s, s}, {0.0, 0.75, 1.0 - 0x1p-53});
  EXPECT_EQ(got[0].token, 77);
  EXPECT_EQ(got[1].token, 1);  // cdf over {77, 1, 3}: 4/6, 5/6, 1
  EXPECT_EQ(got[2].token, 3);
  EXPECT_NEAR(got[2].sampling_logprob, std::log(1.0 / 6.0), 1e-6);
}

TEST(model, DeviceSamplerMixedBatchEqualsEachRowAlone) {
  torch::manual_seed(22);
  const int64_t V = 151936;
  at::Tensor logits = torch::randn({6, V}) * 3.0;
  const std::vector<SamplingParams> params = {{.temperature = 0.0}, {.top_p = 0.9},
                                              {.temperature = 1.0},  {.temperature = 0.8, .top_k = 50},
                                              {.temperature = 0.0},  {.temperature = 1.2, .top_p = 0.7, .top_k = 5000}};
  const std::vector<double> u = {0.3, 0.6, 0.2, 0.9, 0.1, 0.45};
  const std::vector<SampledToken> got = SampleTokens(logits, params, u);
  for (int64_t i = 0; i < 6; ++i) {
    const SampledToken alone = SampleTokens(logits.narrow(0, i, 1), {params[i]}, {u[i]})[0];
    EXPECT_EQ(got[i].token, alone.token) << i;
    EXPECT_EQ(got[i].logprob, alone.logprob) << i;
    EXPECT_EQ(got[i].sampling_logprob, alone.sampling_logprob) << i;
    if (params[i].top_k > 0 || params[i].top_p < 1.0 || params[i].temperature <= 0.0) {
      EXPECT_EQ(got[i].token, SampleToken(logits[i], params[i], u[i]).token) << i;
    }
  }
}

TEST(model, DeviceGreedyLogProbsMatchFloat64) {
  torch::manual_seed(23);
  const int64_t V = 151936;
  at::Tensor logits = torch::randn({6, V});
  logits[1].mul_(8.0f);
  logits[2].mul_(30.0f);  // exp(x) overflows float32 without the max subtracted
  logits[3][100] = 40.0f;  // one dominant token: log-prob close to 0
  logits[4][70000] = 9.0f;
  logits[4][5] = 9.0f;  // a tie for the maximum: the lower id, as argmax
  logits[5].narrow(0, 0, V - 10).fill_(-kInf);  // almost everything blocked
  const std::vector<SamplingParams> greedy(6, SamplingParams{.temperature = 0.0});
  const std::vector<SampledToken> got = SampleTokens(logits, greedy, {0.1, 0.2, 0.3, 0.4, 0.5, 0.6});
  at::Tensor reference = torch::log_softmax(logits.to(torch::kDouble), -1);
  for (int64_t i = 0; i < 6; ++i) {
    const int64_t argmax = logits[i].argmax().item<int64_t>();
    EXPECT_EQ(got[i].token, argmax) << i;
    EXPECT_NEAR(got[i].logprob, reference[i][argmax].item<double>(), 1e-6) << i;
    EXPECT_EQ(got[i].sampling_logprob, 0.0f) << i;
  }
  EXPECT_EQ(got[4].token, 5);
}

}  // namespace
}  // namespace r1r::model
