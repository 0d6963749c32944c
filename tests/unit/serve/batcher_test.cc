// The generation batcher with a fake generator: batching window, max batch, result routing, failures,
// cancellation and shutdown.
#include <atomic>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <absl/synchronization/mutex.h>
#include <absl/synchronization/notification.h>

#include "services/serve/generation_batcher.h"

namespace r1r::serve {
namespace {

// Answers each job with one token: its seed (so a caller can check it got its own results back),
// and records the batch sizes it saw.
struct FakeModel {
  absl::Mutex mu;
  std::vector<size_t> batch_sizes;
  absl::Status fail_with;
  absl::Notification* gate = nullptr;  // when set, the first batch waits for it
  std::atomic<bool> gated_once{false};

  GenerateFn Fn() {
    return [this](const std::vector<const train::EncodedPrompt*>& prompts,
                  const std::vector<model::SamplingParams>& sampling)
               -> absl::StatusOr<std::vector<model::GenerationResult>> {
      if (gate != nullptr && !gated_once.exchange(true)) gate->WaitForNotification();
      {
        absl::MutexLock lock(&mu);
        batch_sizes.push_back(prompts.size());
        if (!fail_with.ok()) return fail_with;
      }
      std::vector<model::GenerationResult> out(prompts.size());
      for (size_t i = 0; i < prompts.size(); ++i) {
        out[i].token_ids = {static_cast<int64_t>(sampling[i].seed), static_cast<int64_t>(prompts[i]->ids.size())};
      }
      return out;
    };
  }
  std::vector<size_t> Sizes() {
    absl::MutexLock lock(&mu);
    return batch_sizes;
  }
};

std::vector<GenerationJob> Jobs(const train::EncodedPrompt* prompt, uint64_t first_seed, int n) {
  std::vector<GenerationJob> jobs(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    jobs[i].prompt = prompt;
    jobs[i].sampling.seed = first_seed + static_cast<uint64_t>(i);
  }
  return jobs;
}

TEST(serve, BatcherGroupsConcurrentCallersWithinTheWindow) {
  FakeModel fake;
  GenerationBatcher batcher(fake.Fn(), BatcherOptions{.max_batch = 16, .window = absl::Seconds(2)}, nullptr);
  train::EncodedPrompt prompt;
  prompt.ids = {1, 2, 3};
  std::vector<std::thread> callers;
  std::atomic<int> ok{0};
  for (int c = 0; c < 4; ++c) {
    callers.emplace_back([&, c] {
      auto r = batcher.Run(Jobs(&prompt, 100 * c, 2));
      ASSERT_TRUE(r.ok()) << r.status();
      ASSERT_EQ(r->size(), 2u);
      EXPECT_EQ((*r)[0].token_ids[0], 100 * c);
      EXPECT_EQ((*r)[1].token_ids[0], 100 * c + 1);
      ++ok;
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(ok, 4);
  // Eight sequences arrived well within the 2 s window of the first: one batch, not four.
  EXPECT_THAT(fake.Sizes(), ::testing::ElementsAre(8u));
}

TEST(serve, BatcherSplitsAtMaxBatchAndKeepsTheCallersOrder) {
  FakeModel fake;
  GenerationBatcher batcher(fake.Fn(), BatcherOptions{.max_batch = 4, .window = absl::Milliseconds(1)}, nullptr);
  train::EncodedPrompt prompt;
  auto r = batcher.Run(Jobs(&prompt, 10, 10));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ((*r)[i].token_ids[0], 10 + i);
  EXPECT_THAT(fake.Sizes(), ::testing::ElementsAre(4u, 4u, 2u));
}

TEST(serve, BatcherWithoutCompanyRunsAfterTheWindow) {
  FakeModel fake;
  GenerationBatcher batcher(fake.Fn(), BatcherOptions{.max_batch = 8, .window = absl::Milliseconds(50)}, nullptr);
  train::EncodedPrompt prompt;
  const absl::Time start = absl::Now();
  auto r = batcher.Run(Jobs(&prompt, 1, 1));
  ASSERT_TRUE(r.ok());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(45));
  EXPECT_THAT(fake.Sizes(), ::testing::ElementsAre(1u));
  EXPECT_EQ(batcher.queued_sequences(), 0);
}

TEST(serve, BatcherFailureReachesEveryCallerInTheBatch) {
  FakeModel fake;
  fake.fail_with = absl::ResourceExhaustedError("out of memory");
  GenerationBatcher batcher(fake.Fn(), BatcherOptions{.max_batch = 8, .window = absl::Milliseconds(200)}, nullptr);
  train::EncodedPrompt prompt;
  std::vector<std::thread> callers;
  std::atomic<int> failed{0};
  for (int c = 0; c < 3; ++c) {
    callers.emplace_back([&] {
      auto r = batcher.Run(Jobs(&prompt, 0, 1));
      if (!r.ok() && absl::IsResourceExhausted(r.status())) ++failed;
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(failed, 3);
}

TEST(serve, BatcherCancelDropsQueuedJobs) {
  FakeModel fake;
  absl::Notification gate;
  fake.gate = &gate;
  GenerationBatcher batcher(fake.Fn(), BatcherOptions{.max_batch = 1, .window = absl::ZeroDuration()}, nullptr);
  train::EncodedPrompt prompt;
  std::thread first([&] { EXPECT_TRUE(batcher.Run(Jobs(&prompt, 0, 1)).ok()); });
  // The first job holds the model; this caller's jobs queue and it gives up.
  while (fake.gated_once.load() == false) absl::SleepFor(absl::Milliseconds(1));
  std::atomic<bool> cancel{false};
  std::thread second([&] {
    auto r = batcher.Run(Jobs(&prompt, 5, 3), [&] { return cancel.load(); });
    EXPECT_TRUE(absl::IsCancelled(r.status())) << r.status();
  });
  while (batcher.queued_sequences() < 3) absl::SleepFor(absl::Milliseconds(1));
  cancel = true;
  second.join();
  EXPECT_EQ(batcher.queued_sequences(), 0);
  gate.Notify();
  first.join();
  EXPECT_THAT(fake.Sizes(), ::testing::ElementsAre(1u));  // the cancelled jobs never ran
}

TEST(serve, BatcherStopFinishesTheRunningBatchAndFailsTheQueue) {
  FakeModel fake;
  absl::Notification gate;
  fake.gate = &gate;
  GenerationBatcher batcher(fake.Fn(), BatcherOptions{.max_batch = 1, .window = absl::ZeroDuration()}, nullptr);
  train::EncodedPrompt prompt;
  std::thread running([&] { EXPECT_TRUE(batcher.Run(Jobs(&prompt, 0, 1)).ok()); });
  while (fake.gated_once.load() == false) absl::SleepFor(absl::Milliseconds(1));
  std::thread queued([&] {
    auto r = batcher.Run(Jobs(&prompt, 1, 2));
    EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
  });
  while (batcher.queued_sequences() < 2) absl::SleepFor(absl::Milliseconds(1));
  std::thread stopper([&] { batcher.Stop(); });
  absl::SleepFor(absl::Milliseconds(20));
  gate.Notify();
  stopper.join();
  running.join();
  queued.join();
  EXPECT_TRUE(absl::IsUnavailable(batcher.Run(Jobs(&prompt, 0, 1)).status()));
}

// Continuous batching with a fake engine: job `seed` needs seed % 4 + 1 steps; each step records how
// many sequences ran and whether a job joined while others were half-way.
struct FakeEngineLog {
  absl::Mutex mu;
  std::vector<size_t> rows_per_step;
  int joins_mid_flight = 0;
  int generators = 0;
};

class FakeStepGenerator : public StepGenerator {
 public:
  explicit FakeStepGenerator(FakeEngineLog* log) : log_(log) {}
  absl::StatusOr<int64_t> Add(const train::EncodedPrompt&, const model::SamplingParams& sampling) override {
    bool mid_flight = false;
    for (const auto& [id, job] : running_) mid_flight = mid_flight || job.steps > 0;
    if (mid_flight) {
      absl::MutexLock lock(&log_->mu);
      ++log_->joins_mid_flight;
    }
    running_[next_] = Job{sampling.seed, 0};
    return next_++;
  }
  absl::StatusOr<std::vector<std::pair<int64_t, model::GenerationResult>>> Step() override {
    {
      absl::MutexLock lock(&log_->mu);
      log_->rows_per_step.push_back(running_.size());
    }
    std::vector<std::pair<int64_t, model::GenerationResult>> done;
    for (auto it = running_.begin(); it != running_.end();) {
      if (++it->second.steps == static_cast<int64_t>(it->second.seed % 4 + 1)) {
        model::GenerationResult r;
        r.token_ids = {static_cast<int64_t>(it->second.seed), it->second.steps};
        done.emplace_back(it->first, r);
        it = running_.erase(it);
      } else {
        ++it;
      }
    }
    return done;
  }
  bool idle() const override { return running_.empty(); }

 private:
  struct Job {
    uint64_t seed;
    int64_t steps;
  };
  FakeEngineLog* log_;
  std::map<int64_t, Job> running_;
  int64_t next_ = 0;
};

TEST(serve, ContinuousBatcherAdmitsJobsBetweenStepsAndKeepsTheCallersOrder) {
  FakeEngineLog log;
  GenerationBatcher batcher(
      [&log]() -> absl::StatusOr<std::unique_ptr<StepGenerator>> {
        absl::MutexLock lock(&log.mu);
        ++log.generators;
        return std::unique_ptr<StepGenerator>(new FakeStepGenerator(&log));
      },
      BatcherOptions{.max_batch = 3}, nullptr);
  train::EncodedPrompt prompt;
  auto r = batcher.Run(Jobs(&prompt, 10, 12));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 12u);
  for (size_t i = 0; i < r->size(); ++i) {
    EXPECT_EQ((*r)[i].token_ids[0], static_cast<int64_t>(10 + i));
    EXPECT_EQ((*r)[i].token_ids[1], static_cast<int64_t>((10 + i) % 4 + 1));
  }
  absl::MutexLock lock(&log.mu);
  EXPECT_EQ(log.generators, 1);
  // Finished sequences made room for waiting ones while the others went on.
  EXPECT_GT(log.joins_mid_flight, 0);
  for (size_t rows : log.rows_per_step) EXPECT_LE(rows, 3u);
  // Fewer steps than static batches of 3, each lasting its longest job (4 + 4 + 3 + 4 = 15 here).
  EXPECT_LT(log.rows_per_step.size(), 15u);
}

}  // namespace
}  // namespace r1r::serve
