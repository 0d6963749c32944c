// Batched sampling with a KV cache: prefill all prompts at once, then decode one token per step.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

#include "absl/status/statusor.h"
#include "common/model/model.h"

namespace r1r::model {

struct SamplingParams {
  // <= 0 means greedy (argmax). Otherwise logits are divided by it before top-k/top-p.
  double temperature = 1.0;
  double top_p = 1.0;      // nucleus: keep the smallest top set whose probability reaches top_p
  int64_t top_k = 0;       // 0 = off
  uint64_t seed = 0;       // per request: the same request samples the same tokens in any batch
  int64_t max_new_tokens = 256;
  std::vector<int64_t> stop_token_ids;  // the stop token is included in the output
  // HF RepetitionPenaltyLogitsProcessor over prompt + generated ids (image pads included), applied
  // before everything else; 1 = off. Qwen2.5-VL's generation_config uses 1.05 (with temperature 1e-6,
  // i.e. greedy). Log-probs are then of the penalised logits and no longer match teacher forcing.
  double repetition_penalty = 1.0;
  // Never sampled (logit set to -inf before everything else): e.g. the vision placeholders, which
  // would be read as image slots when the response is scored again. Log-probs are then of the
  // masked distribution (the suppressed mass is what differs from teacher forcing).
  std::vector<int64_t> suppress_token_ids;
};

struct GenerationRequest {
  std::vector<int64_t> prompt_ids;  // <|image_pad|> runs already expanded to t*h*w/4 per image
  at::Tensor pixel_values;          // [patches, C*T*P*P] for this prompt's images, or undefined
  at::Tensor image_grid_thw;        // [images, 3]
  SamplingParams sampling;
};

enum class FinishReason { kStop, kLength };

struct GenerationResult {
  std::vector<int64_t> token_ids;
  // Behaviour log-probs: log softmax(logits / T)[token] with T the request's temperature (T = 1 when
  // greedy), BEFORE top-k/top-p truncation. This is what a learner recomputes teacher-forced with the
  // same temperature (ComputeTokenLogProbs with the same T), so the two can be compared or used for
  // importance ratios. At T = 1 without top-k/top-p it is exactly the log-prob of the distribution
  // that was sampled from.
  std::vector<float> logprobs;
  // Log-prob under the distribution actually sampled from (after temperature, top-k and top-p and
  // renormalisation); 0 for greedy decoding.
  std::vector<float> sampling_logprobs;
  FinishReason finish_reason = FinishReason::kLength;
};

enum class PaddingSide { kLeft, kRight };

struct GenerateOptions {
  PaddingSide padding_side = PaddingSide::kLeft;
  int64_t pad_token_id = 0;  // any valid id: padding is masked out
  // false: recompute the whole sequence every step (reference path for tests and the benchmark).
  bool use_kv_cache = true;
  // With the cache, rows that finished leave the batch, so the slowest sequence no longer drags the
  // finished ones through every step (false: the old rectangular batch, for the benchmark).
  bool drop_finished_rows = true;
};

absl::StatusOr<std::vector<GenerationResult>> Generate(Qwen2_5_VL& model, const std::vector<GenerationRequest>& requests,
                                                       const GenerateOptions& options = {});

// One sampling step on a float32 CPU logits row [vocab]; exposed for tests.
struct SampledToken {
  int64_t token;
  float logprob;
  float sampling_logprob;
};
SampledToken SampleToken(const at::Tensor& logits, const SamplingParams& params, double uniform);
// logit > 0 ? logit / penalty : logit * penalty for every id in `seen` (duplicates allowed).
at::Tensor ApplyRepetitionPenalty(const at::Tensor& logits, const std::vector<int64_t>& seen, double penalty);

}  // namespace r1r::model
