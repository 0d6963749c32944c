// Generation at speed: the device sampler against the reference sampler, one prefill for K samples,
// continuous batching, and the causal attention path without a mask.
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <vector>

#include "common/model/generate.h"
#include "common/model/modules.h"
#include "tests/unit/model/generation_util.h"
#include "tests/unit/model/test_util.h"

namespace r1r::model {
namespace {

using namespace testing;  // NOLINT

double Uniform(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0); }

// The distribution SampleToken draws from, written out: softmax(logits / T), the top-k, then the
// smallest top set whose mass (before renormalisation) reaches top_p, renormalised.
std::vector<double> ReferenceDistribution(const at::Tensor& logits, const SamplingParams& s) {
  at::Tensor p = torch::softmax(logits.to(torch::kDouble) / s.temperature, 0);
  const int64_t V = p.size(0);
  std::vector<int64_t> order(V);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return p[a].item<double>() > p[b].item<double>(); });
  int64_t keep = s.top_k > 0 ? std::min(V, s.top_k) : V;
  if (s.top_p < 1.0) {
    double before = 0.0;
    int64_t within = 0;
    for (int64_t i = 0; i < keep && before < s.top_p; ++i, ++within) before += p[order[i]].item<double>();
    keep = std::max<int64_t>(1, within);
  }
  std::vector<double> out(V, 0.0);
  double total = 0.0;
  for (int64_t i = 0; i < keep; ++i) total += p[order[i]].item<double>();
  for (int64_t i = 0; i < keep; ++i) out[order[i]] = p[order[i]].item<double>() / total;
  return out;
}

TEST(model, DeviceSamplerMatchesReferenceDistribution) {
  torch::manual_seed(3);
  const int64_t V = 40;
  at::Tensor logits = torch::randn({V}) * 2.0;
  const std::vector<SamplingParams> settings = {
      {.temperature = 1.0}, {.temperature = 0.7}, {.temperature = 1.3, .top_p = 0.8},
      {.top_k = 5},         {.temperature = 0.9, .top_p = 0.9, .top_k = 10}};
  std::mt19937_64 rng(11);
  const int64_t rows = 2000, rounds = 10;  // 20000 draws per setting
  for (const SamplingParams& s : settings) {
    const std::vector<double> expected = ReferenceDistribution(logits, s);
    std::vector<int64_t> counts(V, 0);
    at::Tensor batch = logits.unsqueeze(0).expand({rows, V}).contiguous();
    const std::vector<SamplingParams> params(rows, s);
    at::Tensor logp = torch::log_softmax(logits / s.temperature, 0);
    for (int64_t round = 0; round < rounds; ++round) {
      std::vector<double> u(rows);
      for (double& x : u) x = Uniform(rng);
      const std::vector<SampledToken> got = SampleTokens(batch, params, u);
      for (int64_t i = 0; i < rows; ++i) {
        const SampledToken& t = got[i];
        ASSERT_GE(t.token, 0);
        ASSERT_LT(t.token, V);
        ASSERT_GT(expected[t.token], 0.0) << "token outside the kept set";
        ++counts[t.token];
        EXPECT_NEAR(t.logprob, logp[t.token].item<float>(), 1e-5);
        EXPECT_NEAR(t.sampling_logprob, std::log(expected[t.token]), 1e-5);
        // With top-k/top-p the rows are sorted as the reference sampler does: the same token.
        if (s.top_k > 0 || s.top_p < 1.0) EXPECT_EQ(t.token, SampleToken(logits, s, u[i]).token);
      }
    }
    // Pearson's chi-square over the kept tokens (cells with expected count >= 5; the rest pooled).
    const double n = static_cast<double>(rows * rounds);
    double chi2 = 0.0, pooled_expected = 0.0, pooled_count = 0.0;
    int cells = 0;
    for (int64_t v = 0; v < V; ++v) {
      const double e = expected[v] * n;
      if (e >= 5.0) {
        chi2 += (counts[v] - e) * (counts[v] - e) / e;
        ++cells;
      } else {
        pooled_expected += e;
        pooled_count += static_cast<double>(counts[v]);
      }
    }
    if (pooled_expected > 0.0) {
      chi2 += (pooled_count - pooled_expected) * (pooled_count - pooled_expected) / std::max(pooled_expected, 1e-9);
      ++cells;
    }
    const double df = std::max(1, cells - 1);
    // Beyond df + 6 sqrt(2 df) is p < 1e-5 for these degrees of freedom.
    EXPECT_LT(chi2, df + 6.0 * std::sqrt(2.0 * df))
        << "T " << s.temperature << " top_p " << s.top_p << " top_k " << s.top_k << " cells " << cells;
  }
}

TEST(model, DeviceSamplerGreedyEqualsReference) {
  torch::manual_seed(4);
  at::Tensor logits = torch::randn({6, 300});
  logits[2][17] = 50.0f;
  logits[2][18] = 50.0f;  // a tie resolves to the lower id, as argmax does
  std::vector<SamplingParams> params(6, SamplingParams{.temperature = 0.0});
  const std::vector<double> u = {0.1, 0.5, 0.9, 0.99, 0.0, 0.3};
  const std::vector<SampledToken> got = SampleTokens(logits, params, u);
  for (int64_t i = 0; i < 6; ++i) {
    const SampledToken ref = SampleToken(logits[i], params[i], u[i]);
    EXPECT_EQ(got[i].token, ref.token) << i;
    EXPECT_EQ(got[i].token, logits[i].argmax().item<int64_t>());
    EXPECT_NEAR(got[i].logprob, ref.logprob, 1e-6);
    EXPECT_EQ(got[i].sampling_logprob, 0.0f);
  }
  EXPECT_EQ(got[2].token, 17);
}

TEST(model, GenerateDeviceSamplingEqualsHostSampler) {
  auto model = MakeTinyModel();
  std::vector<GenerationRequest> requests;
  requests.push_back(ImageRequest(model->config(), {.temperature = 0.0, .max_new_tokens = 7}));
  GenerationRequest text;
  text.prompt_ids = TextPrompt(9);
  text.sampling = {.temperature = 0.0, .max_new_tokens = 9, .suppress_token_ids = {5, 9}};
  requests.push_back(text);
  text.sampling = {.temperature = 0.0, .max_new_tokens = 6, .repetition_penalty = 1.3};
  requests.push_back(text);
  // Greedy: the same tokens, exactly.
  auto device = MustGenerate(*model, requests, {.device_sampling = true});
  auto host = MustGenerate(*model, requests, {.device_sampling = false});
  ExpectSame(device, host, "greedy");
  // top-k / top-p rows are sorted on the device like the reference: the same tokens for a seed.
  for (size_t i = 0; i < requests.size(); ++i) {
    requests[i].sampling.temperature = 0.8;
    requests[i].sampling.top_k = 20;
    requests[i].sampling.top_p = 0.95;
    requests[i].sampling.seed = 40 + i;
  }
  ExpectSame(MustGenerate(*model, requests, {.device_sampling = true}),
             MustGenerate(*model, requests, {.device_sampling = false}), "top-k/top-p");
}

TEST(model, SharedPrefillEqualsIndependentGeneration) {
  auto model = MakeTinyModel();
  const ModelConfig& c = model->config();
  for (const SamplingParams& base : {SamplingParams{.temperature = 0.0, .max_new_tokens = 6},
                                     SamplingParams{.temperature = 1.0, .max_new_tokens = 6},
                                     SamplingParams{.temperature = 0.9, .top_p = 0.9, .max_new_tokens = 5}}) {
    // K = 5 samples of one image prompt (separate tensors with equal values, as the actor encodes
    // them), then a different prompt.
    std::vector<GenerationRequest> requests;
    for (int k = 0; k < 5; ++k) {
      SamplingParams s = base;
      s.seed = 100 + k;
      requests.push_back(ImageRequest(c, s));
    }
    GenerationRequest other;
    other.prompt_ids = TextPrompt(12);
    other.sampling = base;
    requests.push_back(other);
    GenerationStats shared_stats, independent_stats;
    auto shared = MustGenerate(*model, requests, {.share_prefill = true, .stats = &shared_stats});
    auto independent = MustGenerate(*model, requests, {.share_prefill = false, .stats = &independent_stats});
    ExpectSame(shared, independent, "shared vs independent prefill");
    EXPECT_EQ(shared_stats.prefill_rows, 2);
    EXPECT_EQ(independent_stats.prefill_rows, 6);
    // Two rows at a time: the samples that join later copy the prefill kept from the first step.
    GenerationStats narrow_stats;
    ExpectSame(MustGenerate(*model, requests, {.max_batch_rows = 2, .stats = &narrow_stats}), independent,
               "2 rows at a time, shared prefill");
    EXPECT_EQ(narrow_stats.prefill_rows, 2);
    // ... and each sample equals its request generated alone.
    for (size_t i = 0; i < requests.size(); ++i) {
      ExpectSame({shared[i]}, MustGenerate(*model, {requests[i]}, {}), "shared vs alone");
    }
    if (base.temperature > 0) EXPECT_NE(shared[0].token_ids, shared[1].token_ids);  // own seeds
  }
}

TEST(model, ContinuousBatchingReturnsWhatEachRequestReturnsAlone) {
  auto model = MakeTinyModel();
  std::vector<GenerationRequest> requests = RaggedRequests(model->config());
  // A stop token that fires early for one request.
  const auto free_run = MustGenerate(*model, {requests[2]}, {});
  requests[2].sampling.stop_token_ids = {free_run[0].token_ids[2]};
  std::vector<GenerationResult> alone;
  for (const auto& r : requests) alone.push_back(MustGenerate(*model, {r}, {})[0]);
  EXPECT_EQ(alone[2].finish_reason, FinishReason::kStop);

  GenerationStats stats;
  std::vector<size_t> finish_order;
  GenerateOptions o{.max_batch_rows = 3, .stats = &stats};
  o.on_result = [&](size_t i, const GenerationResult&) { finish_order.push_back(i); };
  ExpectSame(MustGenerate(*model, requests, o), alone, "3 rows at a time");
  EXPECT_EQ(stats.max_active_rows, 3);
  EXPECT_EQ(finish_order.size(), requests.size());
  // Requests joined while others ran: more decode steps than the longest request, fewer than chunks.
  EXPECT_GT(stats.decode_steps, 12);
  ExpectSame(MustGenerate(*model, requests, {.max_batch_tokens = 80}), alone, "token budget");
  ExpectSame(MustGenerate(*model, requests, {.max_batch_rows = 1}), alone, "one row");
  ExpectSame(MustGenerate(*model, requests, {}), alone, "all at once");
  ExpectSame(MustGenerate(*model, requests, {.continuous_batching = false}), alone, "static batch");
}

TEST(model, EngineAdmitsRequestsBetweenSteps) {
  auto model = MakeTinyModel();
  std::vector<GenerationRequest> requests = RaggedRequests(model->config());
  GenerationEngine engine(*model, {.max_batch_rows = 4});
  std::map<int64_t, GenerationResult> got;
  size_t next = 0;
  int64_t cancelled = -1;
  for (int step = 0; step < 200 && (next < requests.size() || !engine.idle()); ++step) {
    if (next < requests.size() && step % 2 == 0) {  // one request arrives every other step
      auto id = engine.Add(requests[next]);
      ASSERT_TRUE(id.ok()) << id.status();
      EXPECT_EQ(*id, static_cast<int64_t>(next));
      if (next == 5) {  // request 4 has run for two steps
        cancelled = 4;
        engine.Cancel(4);
      }
      ++next;
    }
    auto finished = engine.Step();
    ASSERT_TRUE(finished.ok()) << finished.status();
    for (auto& [id, r] : *finished) got[id] = r;
    EXPECT_LE(engine.running(), 4);
  }
  EXPECT_TRUE(engine.idle());
  EXPECT_EQ(got.count(cancelled), 0u);
  EXPECT_EQ(got.size(), requests.size() - 1);
  for (const auto& [id, r] : got) ExpectSame({r}, MustGenerate(*model, {requests[id]}, {}), "engine vs alone");
  GenerationRequest bad = requests[0];
  bad.prompt_ids.push_back(model->config().text.vocab_size);
  EXPECT_EQ(engine.Add(bad).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(model, CausalPrefillWithoutMaskEqualsPaddedRows) {
  auto model = MakeTinyModel({.num_heads = 4, .num_kv_heads = 1});
  torch::NoGradGuard no_grad;
  const std::vector<int64_t> prompt = TextPrompt(13);
  ForwardInput alone;
  alone.input_ids = Ids(prompt);  // no mask: causal attention without a mask
  auto a = model->Forward(alone);
  ASSERT_TRUE(a.ok()) << a.status();
  // The same prompt left-padded by 4 in a batch with a longer row: the masked path.
  std::vector<int64_t> padded(4, 0);
  padded.insert(padded.end(), prompt.begin(), prompt.end());
  ForwardInput batch;
  batch.input_ids = torch::stack({Ids(padded)[0], Ids(TextPrompt(17, 3))[0]});
  at::Tensor mask = torch::ones({2, 17}, torch::kLong);
  mask[0].narrow(0, 0, 4).fill_(0);
  batch.attention_mask = mask;
  auto b = model->Forward(batch);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_LT(MaxAbsDiff(a->hidden[0], b->hidden[0].narrow(0, 4, 13)), 1e-5);
  // A prompt must not see its future: changing the last token leaves the earlier positions alone.
  std::vector<int64_t> changed = prompt;
  changed.back() = changed.back() + 1;
  alone.input_ids = Ids(changed);
  auto c = model->Forward(alone);
  ASSERT_TRUE(c.ok());
  EXPECT_LT(MaxAbsDiff(a->hidden[0].narrow(0, 0, 12), c->hidden[0].narrow(0, 0, 12)), 1e-6);
  EXPECT_GT(MaxAbsDiff(a->hidden[0][12], c->hidden[0][12]), 1e-4);
}

}  // namespace
}  // namespace r1r::model

namespace r1r::model {
namespace {

using namespace testing;  // NOLINT

// Many ragged requests (duplicated prompts as votes, stops, lengths) through every admission limit:
// no step runs out of cache, and every request returns what it returns alone.
TEST(model, ContinuousBatchingStressMatchesRequestsAlone) {
  auto model = testing::MakeTinyModel();
  const ModelConfig& c = model->config();
  std::mt19937_64 rng(99);
  std::vector<GenerationRequest> requests;
  for (int i = 0; i < 14; ++i) {
    GenerationRequest r;
    if (i % 4 == 0) {
      r.prompt_ids = testing::PromptWithImage(c, 8, 8, 1 + static_cast<int64_t>(rng() % 6), 2);
      r.pixel_values = testing::RandomPixels(c, 8, 8, 50 + i);
      r.image_grid_thw = testing::Grid(8, 8);
    } else {
      r.prompt_ids = testing::TextPrompt(3 + static_cast<int64_t>(rng() % 40), i);
    }
    r.sampling.temperature = 1.0;
    r.sampling.max_new_tokens = 1 + static_cast<int64_t>(rng() % 20);
    r.sampling.stop_token_ids = {static_cast<int64_t>(rng() % 400), static_cast<int64_t>(rng() % 400)};
    r.sampling.seed = 300 + i;
    requests.push_back(r);
    if (i % 3 == 0) {  // a second vote of the same prompt
      r.sampling.seed += 1000;
      requests.push_back(r);
    }
  }
  std::vector<GenerationResult> alone;
  for (const auto& r : requests) alone.push_back(MustGenerate(*model, {r}, {})[0]);
  for (int64_t rows : {0, 1, 2, 3, 5, 8}) {
    for (int64_t tokens : {0, 60}) {
      GenerateOptions o;
      o.max_batch_rows = rows;
      o.max_batch_tokens = tokens;
      o.max_prefill_tokens = rows == 3 ? 30 : 0;
      ExpectSame(MustGenerate(*model, requests, o), alone, "stress");
    }
  }
}

}  // namespace
}  // namespace r1r::model
