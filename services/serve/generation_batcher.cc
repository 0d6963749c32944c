#include "services/serve/generation_batcher.h"

#include <algorithm>
#include <chrono>
#include <map>

#include <absl/strings/str_cat.h>

namespace r1r::serve {

// One caller's share of the work: filled by the worker, read by the caller once `remaining` is 0.
struct GenerationBatcher::Call {
  std::vector<GenerationJob> jobs;
  std::vector<model::GenerationResult> results;
  size_t remaining = 0;  // guarded by the batcher's mu_
  absl::Status status;   // first failure; guarded by mu_
  bool abandoned = false;  // the caller gave up (cancelled); guarded by mu_
};

GenerationBatcher::GenerationBatcher(GenerateFn generate, BatcherOptions options,
                                     std::shared_ptr<ServeMetrics> metrics)
    : generate_(std::move(generate)), options_(options), metrics_(std::move(metrics)) {
  options_.max_batch = std::max(1, options_.max_batch);
  options_.window = std::max(absl::ZeroDuration(), options_.window);
  worker_ = std::thread([this] { Loop(); });
}

GenerationBatcher::GenerationBatcher(StepGeneratorFactory factory, BatcherOptions options,
                                     std::shared_ptr<ServeMetrics> metrics)
    : factory_(std::move(factory)), options_(options), metrics_(std::move(metrics)) {
  options_.max_batch = std::max(1, options_.max_batch);
  worker_ = std::thread([this] { ContinuousLoop(); });
}

GenerationBatcher::~GenerationBatcher() { Stop(); }

void GenerationBatcher::Observe(size_t rows, double seconds, const absl::StatusOr<int64_t>& tokens) {
  if (metrics_ == nullptr) return;
  metrics_->batch_size.Observe(static_cast<double>(rows));
  metrics_->batch_seconds.Observe(seconds);
  if (tokens.ok()) {
    metrics_->generated_tokens.Increment(static_cast<double>(*tokens));
    if (seconds > 0) metrics_->tokens_per_second.Set(static_cast<double>(*tokens) / seconds);
  } else {
    metrics_->batch_errors.Increment();
  }
}

void GenerationBatcher::ContinuousLoop() {
  std::unique_ptr<StepGenerator> engine;
  std::map<int64_t, Entry> in_flight;  // engine id -> job
  auto fail_in_flight = [&](const absl::Status& status) {
    absl::MutexLock lock(&mu_);
    for (auto& [id, e] : in_flight) {
      if (e.call->status.ok()) e.call->status = status;
      --e.call->remaining;
    }
    in_flight.clear();
  };
  while (true) {
    std::vector<Entry> joining;
    {
      absl::MutexLock lock(&mu_);
      if (in_flight.empty()) {
        auto has_work = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_ || !queue_.empty(); };
        mu_.Await(absl::Condition(&has_work));
      }
      if (stopping_) {
        FailWaitingJobs();
        if (in_flight.empty()) return;
      }
      // A generator on a replaced model takes no new jobs; it drains and the next one starts.
      const bool admit = engine == nullptr || engine->current() || in_flight.empty();
      if (admit) {
        const size_t room = static_cast<size_t>(options_.max_batch) - std::min(in_flight.size(), static_cast<size_t>(options_.max_batch));
        const size_t n = std::min(queue_.size(), room);
        joining.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.begin() + n));
        queue_.erase(queue_.begin(), queue_.begin() + n);
        UpdateQueueGauge();
      }
    }
    if (!joining.empty() && (engine == nullptr || (in_flight.empty() && !engine->current()))) {
      auto made = factory_();
      if (!made.ok()) {
        absl::MutexLock lock(&mu_);
        for (Entry& e : joining) {
          if (e.call->status.ok()) e.call->status = made.status();
          --e.call->remaining;
        }
        if (metrics_ != nullptr) metrics_->batch_errors.Increment();
        continue;
      }
      engine = *std::move(made);
    }
    for (Entry& e : joining) {
      const GenerationJob& job = e.call->jobs[e.index];
      auto id = engine->Add(*job.prompt, job.sampling);
      if (!id.ok()) {
        absl::MutexLock lock(&mu_);
        if (e.call->status.ok()) e.call->status = id.status();
        --e.call->remaining;
        continue;
      }
      in_flight.emplace(*id, std::move(e));
    }
    if (in_flight.empty()) continue;
    const size_t rows = in_flight.size();
    const auto start = std::chrono::steady_clock::now();
    auto finished = engine->Step();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!finished.ok()) {
      Observe(rows, seconds, finished.status());
      fail_in_flight(finished.status());
      engine.reset();  // its state is gone with the failed step
      continue;
    }
    int64_t tokens = 0;
    {
      absl::MutexLock lock(&mu_);
      for (auto& [id, result] : *finished) {
        auto it = in_flight.find(id);
        if (it == in_flight.end()) continue;
        tokens += static_cast<int64_t>(result.token_ids.size());
        Call& call = *it->second.call;
        call.results[it->second.index] = std::move(result);
        --call.remaining;
        in_flight.erase(it);
      }
    }
    (void)tokens;
    Observe(rows, seconds, static_cast<int64_t>(rows));  // one token per sequence in flight
  }
}

void GenerationBatcher::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && !worker_.joinable()) return;
    stopping_ = true;
  }
  if (worker_.joinable()) worker_.join();
}

int64_t GenerationBatcher::queued_sequences() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(queue_.size());
}

void GenerationBatcher::UpdateQueueGauge() {
  if (metrics_ == nullptr) return;
  metrics_->queue_depth.Set(static_cast<double>(queue_.size()));
}

void GenerationBatcher::FailWaitingJobs() {
  for (Entry& e : queue_) {
    if (e.call->status.ok()) e.call->status = absl::UnavailableError("r1r-serve is shutting down");
    --e.call->remaining;
  }
  queue_.clear();
  UpdateQueueGauge();
}

absl::StatusOr<std::vector<model::GenerationResult>> GenerationBatcher::Run(const std::vector<GenerationJob>& jobs,
                                                                            const std::function<bool()>& cancelled) {
  if (jobs.empty()) return std::vector<model::GenerationResult>{};
  auto call = std::make_shared<Call>();
  call->jobs = jobs;
  call->results.resize(jobs.size());
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::UnavailableError("r1r-serve is shutting down");
  call->remaining = jobs.size();
  const absl::Time now = absl::Now();
  for (size_t i = 0; i < jobs.size(); ++i) queue_.push_back(Entry{call, i, now});
  UpdateQueueGauge();
  auto done = [&call]() { return call->remaining == 0; };
  while (!mu_.AwaitWithTimeout(absl::Condition(&done), absl::Milliseconds(50))) {
    if (cancelled && cancelled()) {
      call->abandoned = true;
      // Drop the jobs that have not started; a batch already running finishes on its own.
      const size_t before = queue_.size();
      queue_.erase(std::remove_if(queue_.begin(), queue_.end(), [&](const Entry& e) { return e.call == call; }),
                   queue_.end());
      UpdateQueueGauge();
      call->remaining -= before - queue_.size();
      return absl::CancelledError("the client cancelled the request");
    }
  }
  if (!call->status.ok()) return call->status;
  return std::move(call->results);
}

void GenerationBatcher::Loop() {
  while (true) {
    std::vector<Entry> batch;
    {
      absl::MutexLock lock(&mu_);
      auto has_work = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_ || !queue_.empty(); };
      mu_.Await(absl::Condition(&has_work));
      if (stopping_) {
        FailWaitingJobs();
        return;
      }
      // Wait for company until the oldest job's window closes or a full batch is waiting.
      const absl::Time deadline = queue_.front().enqueued + options_.window;
      auto full = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stopping_ || static_cast<int>(queue_.size()) >= options_.max_batch;
      };
      mu_.AwaitWithDeadline(absl::Condition(&full), deadline);
      if (stopping_) continue;  // handled at the top
      const size_t n = std::min(queue_.size(), static_cast<size_t>(options_.max_batch));
      batch.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.begin() + n));
      queue_.erase(queue_.begin(), queue_.begin() + n);
      UpdateQueueGauge();
    }
    std::vector<const train::EncodedPrompt*> prompts;
    std::vector<model::SamplingParams> sampling;
    prompts.reserve(batch.size());
    sampling.reserve(batch.size());
    for (const Entry& e : batch) {
      prompts.push_back(e.call->jobs[e.index].prompt);
      sampling.push_back(e.call->jobs[e.index].sampling);
    }
    const auto start = std::chrono::steady_clock::now();
    absl::StatusOr<std::vector<model::GenerationResult>> results = generate_(prompts, sampling);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (results.ok() && results->size() != batch.size()) {
      results = absl::InternalError(
          absl::StrCat("generation returned ", results->size(), " results for ", batch.size(), " prompts"));
    }
    if (metrics_ != nullptr) {
      metrics_->batch_size.Observe(static_cast<double>(batch.size()));
      metrics_->batch_seconds.Observe(seconds);
      if (results.ok()) {
        int64_t tokens = 0;
        for (const auto& r : *results) tokens += static_cast<int64_t>(r.token_ids.size());
        metrics_->generated_tokens.Increment(static_cast<double>(tokens));
        if (seconds > 0) metrics_->tokens_per_second.Set(static_cast<double>(tokens) / seconds);
      } else {
        metrics_->batch_errors.Increment();
      }
    }
    Deliver(batch, results);
  }
}

void GenerationBatcher::Deliver(const std::vector<Entry>& batch,
                                const absl::StatusOr<std::vector<model::GenerationResult>>& results) {
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < batch.size(); ++i) {
    Call& call = *batch[i].call;
    if (results.ok()) {
      call.results[batch[i].index] = (*results)[i];
    } else if (call.status.ok()) {
      call.status = results.status();
    }
    --call.remaining;
  }
}

}  // namespace r1r::serve
