// Generation (sampling, cache, batching, finish reasons) and teacher-forced chunked log-probs.
#include <cmath>
#include <map>
#include <string>

#include "common/model/generate.h"
#include "common/model/logprobs.h"
#include "common/model/modules.h"
#include "tests/unit/model/test_util.h"

namespace r1r::model {
namespace {

using namespace testing;  // NOLINT

std::vector<GenerationRequest> MixedRequests(const ModelConfig& c, SamplingParams sampling) {
  std::vector<GenerationRequest> requests(3);
  requests[0].prompt_ids = PromptWithImage(c, 8, 8, 2, 2);
  requests[0].pixel_values = RandomPixels(c, 8, 8, 1);
  requests[0].image_grid_thw = Grid(8, 8);
  requests[1].prompt_ids = TextPrompt(4);
  requests[2].prompt_ids = TextPrompt(11, 9);
  for (size_t i = 0; i < requests.size(); ++i) {
    requests[i].sampling = sampling;
    requests[i].sampling.seed = 100 + i;
  }
  requests[1].sampling.max_new_tokens = 3;  // rows finish at different steps
  return requests;
}

std::vector<GenerationResult> MustGenerate(Qwen2_5_VL& model, const std::vector<GenerationRequest>& r,
                                           const GenerateOptions& o) {
  auto out = Generate(model, r, o);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : std::vector<GenerationResult>{};
}

void ExpectSameResults(const std::vector<GenerationResult>& a, const std::vector<GenerationResult>& b,
                       double logprob_tol = 1e-4) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].token_ids, b[i].token_ids) << "request " << i;
    EXPECT_EQ(a[i].finish_reason, b[i].finish_reason);
    ASSERT_EQ(a[i].logprobs.size(), b[i].logprobs.size());
    for (size_t t = 0; t < a[i].logprobs.size(); ++t) EXPECT_NEAR(a[i].logprobs[t], b[i].logprobs[t], logprob_tol);
  }
}

TEST(model, GenerateCachedEqualsRecompute) {
  auto model = MakeTinyModel();
  SamplingParams sampling{.temperature = 1.0, .max_new_tokens = 6};
  auto requests = MixedRequests(model->config(), sampling);
  for (PaddingSide side : {PaddingSide::kLeft, PaddingSide::kRight}) {
    auto cached = MustGenerate(*model, requests, {.padding_side = side, .use_kv_cache = true});
    auto recomputed = MustGenerate(*model, requests, {.padding_side = side, .use_kv_cache = false});
    ExpectSameResults(cached, recomputed);
    EXPECT_EQ(cached[1].token_ids.size(), 3u);
    EXPECT_EQ(cached[0].token_ids.size(), 6u);
  }
}

TEST(model, GenerateBatchEqualsRequestsAlone) {
  auto model = MakeTinyModel();
  SamplingParams sampling{.temperature = 0.8, .top_p = 0.9, .top_k = 50, .max_new_tokens = 5};
  auto requests = MixedRequests(model->config(), sampling);
  for (PaddingSide side : {PaddingSide::kLeft, PaddingSide::kRight}) {
    auto batched = MustGenerate(*model, requests, {.padding_side = side});
    std::vector<GenerationResult> alone;
    for (const auto& r : requests) alone.push_back(MustGenerate(*model, {r}, {})[0]);
    ExpectSameResults(batched, alone);
  }
  // Finished rows leave the cached batch: the first (the image row) stops on a token, the last runs
  // out of length, and the middle one goes on alone.
  const std::vector<GenerationResult> free_run = MustGenerate(*model, requests, {});
  requests[0].sampling.stop_token_ids = {free_run[0].token_ids[1]};
  requests[1].sampling.max_new_tokens = 5;
  requests[2].sampling.max_new_tokens = 3;
  auto batched = MustGenerate(*model, requests, {});
  std::vector<GenerationResult> alone;
  for (const auto& r : requests) alone.push_back(MustGenerate(*model, {r}, {})[0]);
  ExpectSameResults(batched, alone);
  EXPECT_EQ(batched[0].finish_reason, FinishReason::kStop);
  EXPECT_LE(batched[0].token_ids.size(), 2u);
  EXPECT_EQ(batched[1].token_ids.size(), 5u);
  EXPECT_EQ(batched[2].token_ids.size(), 3u);
}

TEST(model, GenerateSeedsAndFinishReasons) {
  auto model = MakeTinyModel();
  GenerationRequest r;
  r.prompt_ids = TextPrompt(5);
  r.sampling = {.temperature = 1.0, .seed = 1, .max_new_tokens = 8};
  auto a = MustGenerate(*model, {r}, {});
  auto again = MustGenerate(*model, {r}, {});
  EXPECT_EQ(a[0].token_ids, again[0].token_ids);
  EXPECT_EQ(a[0].finish_reason, FinishReason::kLength);
  EXPECT_EQ(a[0].token_ids.size(), 8u);
  r.sampling.seed = 2;
  auto other = MustGenerate(*model, {r}, {});
  EXPECT_NE(a[0].token_ids, other[0].token_ids);  // near-uniform tiny model: 8 draws from 512

  // Stop on the third sampled token of seed 1: output ends with it, reason stop.
  r.sampling.seed = 1;
  r.sampling.stop_token_ids = {a[0].token_ids[2]};
  auto stopped = MustGenerate(*model, {r}, {});
  ASSERT_LE(stopped[0].token_ids.size(), 3u);
  EXPECT_EQ(stopped[0].token_ids.back(), a[0].token_ids[2]);
  EXPECT_EQ(stopped[0].finish_reason, FinishReason::kStop);

  r.sampling.temperature = 0.0;  // greedy: deterministic regardless of seed
  r.sampling.stop_token_ids.clear();
  auto g1 = MustGenerate(*model, {r}, {});
  r.sampling.seed = 99;
  auto g2 = MustGenerate(*model, {r}, {});
  EXPECT_EQ(g1[0].token_ids, g2[0].token_ids);

  r.prompt_ids.push_back(model->config().text.vocab_size);
  EXPECT_EQ(Generate(*model, {r}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(model, SampleTokenFilters) {
  at::Tensor logits = torch::tensor({1.0f, 3.0f, 2.0f, 0.5f});
  at::Tensor logp = torch::log_softmax(logits, 0);
  SampledToken greedy = SampleToken(logits, {.temperature = 0.0}, 0.99);
  EXPECT_EQ(greedy.token, 1);
  EXPECT_NEAR(greedy.logprob, logp[1].item<float>(), 1e-6);
  EXPECT_EQ(SampleToken(logits, {.top_k = 1}, 0.99).token, 1);
  EXPECT_EQ(SampleToken(logits, {.top_p = 0.1}, 0.99).token, 1);
  // top-k 2 keeps ids 1 and 2: the sampled distribution is their renormalised pair.
  SampledToken k2 = SampleToken(logits, {.top_k = 2}, 0.999);
  EXPECT_EQ(k2.token, 2);
  const double p1 = std::exp(3.0), p2 = std::exp(2.0);
  EXPECT_NEAR(k2.sampling_logprob, std::log(p2 / (p1 + p2)), 1e-5);
  EXPECT_NEAR(k2.logprob, logp[2].item<float>(), 1e-6);  // behaviour log-prob: unfiltered
  // u = 0 picks the most likely token; u just below 1 the least likely one.
  EXPECT_EQ(SampleToken(logits, {}, 0.0).token, 1);
  EXPECT_EQ(SampleToken(logits, {}, 0.999999).token, 3);
  // Temperature: the behaviour log-prob is of softmax(logits / T).
  SampledToken hot = SampleToken(logits, {.temperature = 2.0}, 0.0);
  EXPECT_NEAR(hot.logprob, torch::log_softmax(logits / 2.0, 0)[1].item<float>(), 1e-6);
  EXPECT_NEAR(hot.sampling_logprob, hot.logprob, 1e-6);
}

TEST(model, RepetitionPenaltyFollowsHf) {
  at::Tensor logits = torch::tensor({2.0f, -1.0f, 0.5f, 3.0f});
  at::Tensor out = ApplyRepetitionPenalty(logits, {0, 1, 1}, 2.0);
  EXPECT_TRUE(torch::allclose(out, torch::tensor({1.0f, -2.0f, 0.5f, 3.0f})));
  EXPECT_TRUE(torch::equal(ApplyRepetitionPenalty(logits, {0}, 1.0), logits));
  // In generation a strong penalty forbids repeating the greedy token.
  auto model = MakeTinyModel();
  GenerationRequest r;
  r.prompt_ids = TextPrompt(3);
  r.sampling = {.temperature = 0.0, .max_new_tokens = 12, .repetition_penalty = 1e6};
  auto out_tokens = MustGenerate(*model, {r}, {})[0].token_ids;
  std::vector<int64_t> all = r.prompt_ids;
  for (int64_t token : out_tokens) {
    EXPECT_EQ(std::count(all.begin(), all.end(), token), 0) << token;
    all.push_back(token);
  }
}

TEST(model, GenerationLogProbsMatchTeacherForced) {
  auto model = MakeTinyModel();
  const ModelConfig& c = model->config();
  GenerationRequest r;
  r.prompt_ids = PromptWithImage(c, 8, 8, 2, 2);
  r.pixel_values = RandomPixels(c, 8, 8, 4);
  r.image_grid_thw = Grid(8, 8);
  r.sampling = {.temperature = 0.7, .seed = 5, .max_new_tokens = 6};
  auto gen = MustGenerate(*model, {r}, {});
  std::vector<int64_t> all = r.prompt_ids;
  all.insert(all.end(), gen[0].token_ids.begin(), gen[0].token_ids.end());
  ForwardInput in;
  in.input_ids = Ids(all);
  in.pixel_values = r.pixel_values;
  in.image_grid_thw = r.image_grid_thw;
  torch::NoGradGuard no_grad;
  auto scored = ComputeTokenLogProbs(
      *model, in, {.chunk_size = 4, .temperature = 0.7, .first_target_position = static_cast<int64_t>(r.prompt_ids.size())});
  ASSERT_TRUE(scored.ok()) << scored.status();
  ASSERT_EQ(scored->logprobs.size(1), 6);
  for (int t = 0; t < 6; ++t) EXPECT_NEAR(scored->logprobs[0][t].item<float>(), gen[0].logprobs[t], 1e-4);
}

TEST(model, ChunkedLogProbsMatchUnchunkedWithGradients) {
  torch::manual_seed(0);
  const int64_t N = 37, H = 16, V = 50;
  at::Tensor hidden = torch::randn({N, H}, torch::kDouble).to(torch::kFloat).requires_grad_(true);
  at::Tensor weight = torch::randn({V, H}).requires_grad_(true);
  at::Tensor targets = torch::randint(0, V, {N}, torch::kLong);
  at::Tensor g1 = torch::randn({N}), g2 = torch::randn({N});
  const double T = 0.9;

  at::Tensor logp_all = torch::log_softmax(torch::matmul(hidden, weight.t()) / T, -1);
  at::Tensor ref_lp = logp_all.gather(1, targets.unsqueeze(1)).squeeze(1);
  at::Tensor ref_ent = -(logp_all.exp() * logp_all).sum(-1);
  auto ref_grads = torch::autograd::grad({(ref_lp * g1).sum() + (ref_ent * g2).sum()}, {hidden, weight}, {},
                                         /*retain_graph=*/true);

  auto [lp, ent] = ChunkedTokenLogProbs(hidden, weight, targets, /*chunk_size=*/8, T, /*compute_entropy=*/true);
  EXPECT_LT(MaxAbsDiff(lp, ref_lp), 1e-5);
  EXPECT_LT(MaxAbsDiff(ent, ref_ent), 1e-5);
  auto grads = torch::autograd::grad({(lp * g1).sum() + (ent * g2).sum()}, {hidden, weight});
  EXPECT_GT(ref_grads[0].abs().sum().item<double>(), 0.0);
  EXPECT_LT(MaxAbsDiff(grads[0], ref_grads[0]), 1e-4);
  EXPECT_LT(MaxAbsDiff(grads[1], ref_grads[1]), 1e-4);

  // Without entropy: only the log-prob gradient.
  auto [lp_only, none] = ChunkedTokenLogProbs(hidden, weight, targets, 5, T, false);
  EXPECT_FALSE(none.defined());
  auto grads_lp = torch::autograd::grad({(lp_only * g1).sum()}, {hidden});
  auto ref_lp_grad = torch::autograd::grad({(ref_lp * g1).sum()}, {hidden});
  EXPECT_LT(MaxAbsDiff(grads_lp[0], ref_lp_grad[0]), 1e-4);
}

TEST(model, TeacherForcedLogProbsTrainTheModel) {
  auto model = MakeTinyModel({.tie_word_embeddings = true});
  const ModelConfig& c = model->config();
  ForwardInput in;
  in.input_ids = Ids(PromptWithImage(c, 4, 4, 2, 6));
  in.pixel_values = RandomPixels(c, 4, 4, 2);
  in.image_grid_thw = Grid(4, 4);
  auto scored = ComputeTokenLogProbs(*model, in, {.chunk_size = 3, .compute_entropy = true});
  ASSERT_TRUE(scored.ok()) << scored.status();
  EXPECT_EQ(scored->logprobs.size(1), in.input_ids.size(1) - 1);
  // Same values as full logits.
  {
    torch::NoGradGuard no_grad;
    auto out = model->Forward(in);
    at::Tensor logp = torch::log_softmax(model->ComputeLogits(out->hidden), -1);
    at::Tensor ref = logp.narrow(1, 0, in.input_ids.size(1) - 1)
                         .gather(2, in.input_ids.narrow(1, 1, in.input_ids.size(1) - 1).unsqueeze(-1))
                         .squeeze(-1);
    EXPECT_LT(MaxAbsDiff(scored->logprobs, ref), 1e-5);
  }
  // SFT-style loss: gradients reach the tied embedding, a text layer and the vision tower.
  (-scored->logprobs.mean()).backward();
  const auto params = model->named_parameters();  // find() points into it: keep it alive
  for (const char* name : {"model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.bias",
                           "visual.patch_embed.proj.weight", "visual.merger.mlp.2.weight"}) {
    const at::Tensor* p = params.find(name);
    ASSERT_NE(p, nullptr) << name;
    ASSERT_TRUE(p->grad().defined()) << name;
    EXPECT_GT(p->grad().abs().sum().item<double>(), 0.0) << name;
  }
}

TEST(model, CheckpointedLayersGiveTheSameGradients) {
  const ModelConfig c = MakeTinyConfig();
  ForwardInput in;
  in.input_ids = Ids(PromptWithImage(c, 4, 8, 2, 5));
  in.pixel_values = RandomPixels(c, 4, 8, 3);
  in.image_grid_thw = Grid(4, 8);
  std::vector<std::map<std::string, at::Tensor>> grads;
  std::vector<at::Tensor> values;
  for (bool checkpoint : {false, true}) {
    auto model = MakeTinyModel({}, at::kFloat, /*seed=*/21);
    // Frozen embeddings: the checkpointed layers must still receive gradients.
    model->text().embed_tokens->weight.set_requires_grad(false);
    in.checkpoint_layers = checkpoint;
    auto scored = ComputeTokenLogProbs(*model, in, {.chunk_size = 5});
    ASSERT_TRUE(scored.ok()) << scored.status();
    (-scored->logprobs.sum()).backward();
    values.push_back(scored->logprobs.detach());
    std::map<std::string, at::Tensor> g;
    for (const auto& item : model->named_parameters()) {
      if (item.value().grad().defined()) g[item.key()] = item.value().grad().clone();
    }
    grads.push_back(std::move(g));
  }
  EXPECT_TRUE(torch::equal(values[0], values[1]));
  ASSERT_EQ(grads[0].size(), grads[1].size());
  EXPECT_EQ(grads[0].count("model.embed_tokens.weight"), 0u);
  for (const auto& [name, g] : grads[0]) {
    ASSERT_EQ(grads[1].count(name), 1u) << name;
    EXPECT_LT(MaxAbsDiff(g, grads[1].at(name)), 1e-6) << name;
  }
  EXPECT_GT(grads[1].at("model.layers.0.mlp.up_proj.weight").abs().sum().item<double>(), 0.0);
}

}  // namespace
}  // namespace r1r::model
