// Generation with a KV cache: continuous batching (requests join and leave between decode steps), one
// prefill per distinct prompt, and sampling on the device. The static batch of before stays as an option.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "absl/status/statusor.h"
#include "common/model/model.h"
#include "common/model/sampler.h"

namespace r1r::model {

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

// What a generation run did (for tests, benchmarks and metrics).
struct GenerationStats {
  int64_t prefill_rows = 0;     // prompt rows prefilled (one per distinct prompt with shared prefill)
  int64_t prefill_tokens = 0;   // prompt tokens prefilled
  int64_t decode_steps = 0;     // decode forwards
  int64_t decode_rows = 0;      // rows summed over decode forwards
  int64_t max_active_rows = 0;  // most sequences decoded together
  // With cuda_graphs: decode step shapes met, how many of them replay a captured graph, and the
  // seconds spent capturing (included in the generation's time).
  int64_t decode_graph_shapes = 0;
  int64_t decode_graphs_captured = 0;
  double decode_graph_capture_seconds = 0;
};

struct GenerateOptions {
  PaddingSide padding_side = PaddingSide::kLeft;  // static batches only
  int64_t pad_token_id = 0;  // any valid id: padding is masked out
  // false: recompute the whole sequence every step (reference path for tests and the benchmark).
  bool use_kv_cache = true;
  // Continuous batching (with the cache): between decode steps finished rows leave (the last row
  // takes their slot) and waiting requests join, up to max_batch_rows / max_batch_tokens.
  // false: the static batch of before (all prompts padded to one width and prefilled together; with
  // drop_finished_rows, finished rows leave by copying the cache), for comparison.
  bool continuous_batching = true;
  // Static batches: rows that finished leave the batch (false: the old rectangular batch).
  bool drop_finished_rows = true;
  // Continuous batching: sequences decoded together (0 = all requests at once), and the token budget
  // of the rows in flight, each counting prompt + max_new_tokens (0 = unlimited; one request is
  // always admitted). max_prefill_tokens bounds the prompt tokens of one admission forward.
  int64_t max_batch_rows = 0;
  int64_t max_batch_tokens = 0;
  int64_t max_prefill_tokens = 0;
  // Requests with the same prompt (ids, pixels and grid) are prefilled once, vision tower included,
  // and the prompt's KV entries are copied into one row per request (votes, samples_per_prompt).
  bool share_prefill = true;
  // Temperature, top-k and top-p on the logits' device; only the sampled ids and log-probs cross to
  // the host. false: today's reference sampler on the host (SampleToken per row, full sort).
  bool device_sampling = true;
  // Continuous batching: decode steps run in fixed shapes (rows rounded up to a power of two, the
  // attended length up to a multiple of cuda_graph_span_step) replayed from CUDA graphs captured on
  // first use (decode_graphs.h). On a CPU model the same fixed-shape steps run eagerly (for tests).
  bool cuda_graphs = false;
  int64_t cuda_graph_span_step = 256;
  // Called with (request index, result) as each request finishes (continuous batching), or for all at
  // the end (static). Results are also returned in request order.
  std::function<void(size_t, const GenerationResult&)> on_result;
  // Polled between decode steps: true stops the run with CANCELLED.
  std::function<bool()> cancelled;
  GenerationStats* stats = nullptr;  // filled when set
};

absl::StatusOr<std::vector<GenerationResult>> Generate(Qwen2_5_VL& model, const std::vector<GenerationRequest>& requests,
                                                       const GenerateOptions& options = {});

// Continuous batching over a model, for callers that receive requests over time (r1r-serve): Add
// queues a request, each Step admits waiting requests while the limits allow (one prefill per distinct
// prompt), samples one token for every running row and returns the requests that finished.
// Options: the continuous-batching fields of GenerateOptions (on_result/cancelled/stats unused).
class GenerationEngine {
 public:
  GenerationEngine(Qwen2_5_VL& model, const GenerateOptions& options);
  ~GenerationEngine();
  GenerationEngine(const GenerationEngine&) = delete;
  GenerationEngine& operator=(const GenerationEngine&) = delete;

  // Validates and queues a request; returns its id (0, 1, 2, ... in the order of Add).
  absl::StatusOr<int64_t> Add(GenerationRequest request);
  // Allocates slots for `rows` sequences of up to `capacity` tokens (prompt + new) ahead of time; the
  // cache otherwise grows when a request needs more (a copy of the running rows).
  void Reserve(int64_t rows, int64_t capacity);
  // Drops a waiting or running request (its result is never returned).
  void Cancel(int64_t id);
  absl::StatusOr<std::vector<std::pair<int64_t, GenerationResult>>> Step();
  bool idle() const;
  int64_t running() const;
  int64_t waiting() const;
  const GenerationStats& stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace r1r::model
