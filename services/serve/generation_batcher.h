// Dynamic batching for a single model: callers hand in generation jobs (one prompt + sampling
// parameters each) and block; results come back in the caller's order. Two modes:
// - continuous (a StepGenerator): one worker thread steps a generation engine; between its decode
//   steps, finished sequences leave and waiting jobs join, up to max_batch sequences in flight (and
//   jobs of one prompt, e.g. votes, share one prefill);
// - static batches (a GenerateFn): the worker collects the jobs that arrive within a window after the
//   oldest waiting one (up to max_batch sequences) and generates them together.
// A caller's jobs may be spread over several batches and share batches with other callers' jobs.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <utility>
#include <thread>
#include <vector>

#include <absl/status/statusor.h>
#include <absl/synchronization/mutex.h>
#include <absl/time/time.h>

#include "common/model/generate.h"
#include "common/train/prompt_encoder.h"
#include "services/serve/serve_metrics.h"

namespace r1r::serve {

struct GenerationJob {
  const train::EncodedPrompt* prompt = nullptr;  // owned by the caller; alive until Run returns
  model::SamplingParams sampling;
};

// Generates one batch: results[i] answers (prompts[i], sampling[i]).
using GenerateFn = std::function<absl::StatusOr<std::vector<model::GenerationResult>>(
    const std::vector<const train::EncodedPrompt*>& prompts, const std::vector<model::SamplingParams>& sampling)>;

// Continuous batching over one model: Add queues a sequence, Step admits queued ones and decodes one
// token for each in flight, returning those that finished (model::GenerationEngine behind it).
class StepGenerator {
 public:
  virtual ~StepGenerator() = default;
  virtual absl::StatusOr<int64_t> Add(const train::EncodedPrompt& prompt, const model::SamplingParams& sampling) = 0;
  virtual absl::StatusOr<std::vector<std::pair<int64_t, model::GenerationResult>>> Step() = 0;
  virtual bool idle() const = 0;
  // false once the model it runs on was replaced (a reload): the batcher then lets it drain and makes
  // a new one for the jobs that wait.
  virtual bool current() const { return true; }
};
// Makes a generator on the current model.
using StepGeneratorFactory = std::function<absl::StatusOr<std::unique_ptr<StepGenerator>>()>;

struct BatcherOptions {
  int max_batch = 8;                            // sequences per Generate call (continuous: in flight)
  absl::Duration window = absl::Milliseconds(5);  // how long the oldest job waits for company
  // r1r-serve: continuous batching (a StepGenerator) instead of static batches (a GenerateFn).
  bool continuous = true;
};

class GenerationBatcher {
 public:
  // `metrics` may be null. Starts the worker thread.
  GenerationBatcher(GenerateFn generate, BatcherOptions options, std::shared_ptr<ServeMetrics> metrics);
  // Continuous batching (max_batch: sequences in flight; the window is not used).
  GenerationBatcher(StepGeneratorFactory factory, BatcherOptions options, std::shared_ptr<ServeMetrics> metrics);
  ~GenerationBatcher();  // Stop()
  GenerationBatcher(const GenerationBatcher&) = delete;
  GenerationBatcher& operator=(const GenerationBatcher&) = delete;

  // Blocks until every job is generated. `cancelled` (optional) is polled: once it returns true the
  // caller's jobs that have not started are dropped and the call returns CANCELLED. A failed batch
  // fails every caller with a job in it.
  absl::StatusOr<std::vector<model::GenerationResult>> Run(const std::vector<GenerationJob>& jobs,
                                                          const std::function<bool()>& cancelled = nullptr);

  // Finishes the batch in progress, fails waiting jobs with UNAVAILABLE and joins the worker.
  void Stop();

  int64_t queued_sequences() const;

 private:
  struct Call;
  struct Entry {
    std::shared_ptr<Call> call;
    size_t index;
    absl::Time enqueued;
  };

  void Loop();
  void ContinuousLoop();
  void Observe(size_t rows, double seconds, const absl::StatusOr<int64_t>& tokens);
  void Deliver(const std::vector<Entry>& batch, const absl::StatusOr<std::vector<model::GenerationResult>>& results);
  void UpdateQueueGauge() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // At shutdown: every waiting job fails as UNAVAILABLE (the sequences in flight finish).
  void FailWaitingJobs() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  GenerateFn generate_;
  StepGeneratorFactory factory_;
  BatcherOptions options_;
  std::shared_ptr<ServeMetrics> metrics_;

  mutable absl::Mutex mu_;
  std::deque<Entry> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread worker_;
};

}  // namespace r1r::serve
