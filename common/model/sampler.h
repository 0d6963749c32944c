// Token sampling from logits: the reference sampler on the host (one full sort per row), the device
// sampler (one call over [rows, vocab]) and the logits processors generation applies before either.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

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

// One sampling step on a float32 CPU logits row [vocab]; the reference sampler (host, full sort).
struct SampledToken {
  int64_t token;
  float logprob;
  float sampling_logprob;
};
SampledToken SampleToken(const at::Tensor& logits, const SamplingParams& params, double uniform);

// The device sampler: one token per row of float32 logits [rows, vocab] on any device, row i with
// params[i] and the uniform draw uniforms[i] in [0, 1). Greedy rows take the argmax (as SampleToken)
// with a float64 log of their softmax sum. Without top-k/top-p a row is sampled by inverse CDF over
// the vocabulary in id order (no sort). With them a row gets SampleToken's kept set (the same float32
// probabilities and float64 running sums, ties to the lower id) but sorts only the tokens above a
// cutoff found by bisection on the probability mass; those rows run one at a time, each reading a few
// scalars on the host (the bisection steps). Otherwise only the ids and log-probs cross to the host.
// Same distribution as SampleToken, and the same token for the same draw with top-k/top-p.
std::vector<SampledToken> SampleTokens(const at::Tensor& logits, const std::vector<SamplingParams>& params,
                                       const std::vector<double>& uniforms);

// logit > 0 ? logit / penalty : logit * penalty for every id in `seen` (duplicates allowed).
at::Tensor ApplyRepetitionPenalty(const at::Tensor& logits, const std::vector<int64_t>& seen, double penalty);

// One row of a generation step: its request's settings, the ids it has seen (for the repetition
// penalty) and its uniform draw.
struct RowToSample {
  const SamplingParams* params;
  const std::vector<int64_t>* prompt;
  const std::vector<int64_t>* generated;
  double uniform;
};

// Suppressed ids and the repetition penalty, applied in place to `logits` [rows, vocab], then the
// device sampler (on_device) or SampleToken per row on the host.
std::vector<SampledToken> SampleRows(at::Tensor logits, const std::vector<RowToSample>& rows, bool on_device);

}  // namespace r1r::model
