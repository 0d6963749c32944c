// Helpers of the generation tests: generate or fail the test, compare results, ragged requests.
#pragma once

#include <vector>

#include "common/model/generate.h"
#include "tests/unit/model/test_util.h"

namespace r1r::model::testing {

inline std::vector<GenerationResult> MustGenerate(Qwen2_5_VL& model, const std::vector<GenerationRequest>& r,
                                                  const GenerateOptions& o) {
  auto out = Generate(model, r, o);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : std::vector<GenerationResult>{};
}

// Same tokens and finish reasons; log-probs within 1e-4.
inline void ExpectSame(const std::vector<GenerationResult>& a, const std::vector<GenerationResult>& b,
                       const char* what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].token_ids, b[i].token_ids) << what << ", request " << i;
    EXPECT_EQ(a[i].finish_reason, b[i].finish_reason) << what << ", request " << i;
    ASSERT_EQ(a[i].logprobs.size(), b[i].logprobs.size());
    for (size_t t = 0; t < a[i].logprobs.size(); ++t) {
      EXPECT_NEAR(a[i].logprobs[t], b[i].logprobs[t], 1e-4) << what << ", request " << i;
      EXPECT_NEAR(a[i].sampling_logprobs[t], b[i].sampling_logprobs[t], 1e-4) << what << ", request " << i;
    }
  }
}

inline GenerationRequest ImageRequest(const ModelConfig& c, SamplingParams s) {
  GenerationRequest r;
  r.prompt_ids = PromptWithImage(c, 8, 8, 3, 5);
  r.pixel_values = RandomPixels(c, 8, 8, 2);
  r.image_grid_thw = Grid(8, 8);
  r.sampling = s;
  return r;
}

// Nine requests of every kind: images and text of several lengths, greedy and sampled (top-k, top-p,
// penalties, suppressed ids), each with its own seed.
inline std::vector<GenerationRequest> RaggedRequests(const ModelConfig& c) {
  std::vector<GenerationRequest> requests;
  const std::vector<SamplingParams> kinds = {
      {.temperature = 0.0, .max_new_tokens = 9},
      {.temperature = 1.0, .max_new_tokens = 3},
      {.temperature = 0.7, .top_p = 0.9, .top_k = 30, .max_new_tokens = 12},
      {.temperature = 0.0, .max_new_tokens = 5, .repetition_penalty = 1.2},
      {.temperature = 1.2, .max_new_tokens = 8, .suppress_token_ids = {1, 2, 3}},
  };
  for (int i = 0; i < 9; ++i) {
    GenerationRequest r;
    if (i % 3 == 0) {
      r = ImageRequest(c, {});
      r.pixel_values = RandomPixels(c, 8, 8, 30 + i);
    } else {
      r.prompt_ids = TextPrompt(4 + 3 * i, i);
    }
    r.sampling = kinds[i % kinds.size()];
    r.sampling.seed = 200 + i;
    requests.push_back(r);
  }
  return requests;
}

}  // namespace r1r::model::testing
