// Teacher-forced per-token log-probs (and entropy) of given sequences, memory-bounded.
//
// The lm_head projection, log_softmax and gather run chunk by chunk over the token positions; a
// custom autograd function recomputes each chunk's logits in backward, so neither pass ever holds
// [batch, tokens, vocab] logits (152k vocab x 4k tokens x 4 B = 2.4 GB per sequence otherwise).
// Gradients flow to the hidden states (hence the whole model) and to the output projection.
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

#include "absl/status/statusor.h"
#include "common/model/model.h"

namespace r1r::model {

struct TokenLogProbsOptions {
  int64_t chunk_size = 1024;  // token positions per lm_head chunk
  double temperature = 1.0;   // logits are divided by it (match the sampler's temperature)
  bool compute_entropy = false;
  // First target position: log-probs are produced for tokens [first_target_position, L), i.e. for
  // the response part only when this is the prompt length. Must be >= 1.
  int64_t first_target_position = 1;
};

struct TokenLogProbs {
  // [B, L - first_target_position] float32: entry (b, j) = log p(ids[b, f+j] | ids[b, < f+j]).
  at::Tensor logprobs;
  at::Tensor entropy;  // same shape, when requested; entropy of the predictive distribution
};

// Runs the model (grad mode as the caller set it) and scores input.input_ids against itself.
// Padding positions get values too; mask them with the attention mask.
absl::StatusOr<TokenLogProbs> ComputeTokenLogProbs(Qwen2_5_VL& model, const ForwardInput& input,
                                                   const TokenLogProbsOptions& options = {});

// Log-probs [N] float32 of the tokens at flat `positions` ([N] int64 into the [B, L] input_ids, none at
// a row's column 0), each predicted from the column before: for packed rows, whose targets lie between
// other samples' tokens. Only these N positions go through the output projection.
absl::StatusOr<at::Tensor> ComputeTokenLogProbsAt(Qwen2_5_VL& model, const ForwardInput& input,
                                                  const at::Tensor& positions, const TokenLogProbsOptions& options = {});

// The chunked core: hidden [N, H], weight [V, H], targets [N] int64 -> (logprobs [N], entropy [N] or
// undefined), float32, differentiable w.r.t. hidden and weight.
std::pair<at::Tensor, at::Tensor> ChunkedTokenLogProbs(const at::Tensor& hidden, const at::Tensor& weight,
                                                       const at::Tensor& targets, int64_t chunk_size,
                                                       double temperature, bool compute_entropy);

}  // namespace r1r::model
