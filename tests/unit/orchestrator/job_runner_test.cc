// The job runner and its phase units in-process, where no peer is needed: the cluster's channels are
// created (lazily) to a port nobody listens on, and every case here ends before the first call.
#include <atomic>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "common/config/job_spec.h"
#include "common/obs/metrics.h"
#include "services/orchestrator/eval_phase.h"
#include "services/orchestrator/job_context.h"
#include "services/orchestrator/job_runner.h"
#include "services/orchestrator/orchestrator_metrics.h"
#include "services/orchestrator/rl_phase.h"
#include "services/orchestrator/sft_phase.h"
#include "services/orchestrator/wire_prompts.h"
#include "tests/unit/orchestrator/orchestrator_world.h"

namespace r1r::orchestrator {
namespace {

ClusterTargets Nowhere() { return {"127.0.0.1:1", {"127.0.0.1:1"}, "127.0.0.1:1", ""}; }

// Waits (up to 20 s) for the job to reach a terminal state.
v1::Job WaitUntilFinished(jobs::JobStore& store, const std::string& id) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  auto job = store.Get(id);
  while (job.ok() && !jobs::JobStore::IsTerminal(job->state()) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    job = store.Get(id);
  }
  EXPECT_TRUE(job.ok()) << job.status();
  return job.ok() ? *job : v1::Job{};
}

v1::Job Create(jobs::JobStore& store, const std::string& yaml, const std::string& work_dir) {
  auto job = store.Create("t", yaml, {v1::PHASE_DATA_PREP, v1::PHASE_SFT, v1::PHASE_RL, v1::PHASE_EVAL,
                                      v1::PHASE_PUBLISH}, work_dir);
  EXPECT_TRUE(job.ok()) << job.status();
  return job.ok() ? *job : v1::Job{};
}


TEST(orchestrator, RunnerWithoutPeersKeepsJobsQueued) {
  OrchestratorWorld w("runner_no_peers");
  obs::Metrics registry("orchestrator");
  OrchestratorMetrics metrics(registry);
  const v1::Job job = Create(*w.store, TinySpecYaml(), w.work_root);
  JobRunner runner(w.store.get(), std::nullopt, w.roots, &metrics);
  runner.Start();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the loop polls every 200 ms
  runner.Stop();
  EXPECT_EQ(w.store->Get(job.id())->state(), v1::JOB_STATE_QUEUED);
}

// The spec is confined again when the job starts: a path that left the roots since the submit (here,
// one that never was inside) fails the job, naming the field, before any peer is called.
TEST(orchestrator, RunnerFailsAJobWhosePathLeftTheRoots) {
  OrchestratorWorld w("runner_roots");
  obs::Metrics registry("orchestrator");
  OrchestratorMetrics metrics(registry);
  const std::string yaml = "name: t\nmodel: {init: tiny, device: cpu, dtype: float32}\n"
                           "tokenizer: {train_vocab_size: 300}\ndata: {source: pairs_jsonl, path: /etc/hostname}\n";
  const v1::Job job = Create(*w.store, yaml, w.work_root);
  JobRunner runner(w.store.get(), Nowhere(), w.roots, &metrics);
  runner.Start();
  const v1::Job done = WaitUntilFinished(*w.store, job.id());
  runner.Stop();
  EXPECT_EQ(done.state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(done.error().rfind("data.path", 0), 0u) << done.error();
  EXPECT_EQ(done.phases(0).state(), v1::JOB_STATE_QUEUED);  // no phase ran
  EXPECT_EQ(metrics.jobs_failed.Value(), 1);
  EXPECT_EQ(metrics.jobs_succeeded.Value(), 0);
}

// Data prep is the first phase and calls no peer: a dataset without a usable row fails it.
TEST(orchestrator, DataPrepFailureFailsThePhaseAndTheJob) {
  OrchestratorWorld w("runner_data_prep");
  obs::Metrics registry("orchestrator");
  OrchestratorMetrics metrics(registry);
  std::ofstream(w.data_root + "/pairs.jsonl") << "not json\n";
  const std::string yaml = "name: t\nmodel: {init: tiny, device: cpu, dtype: float32}\n"
                           "tokenizer: {train_vocab_size: 300}\ndata: {source: pairs_jsonl, path: " +
                           w.data_root + "/pairs.jsonl}\n";
  const v1::Job job = Create(*w.store, yaml, w.work_root);
  JobRunner runner(w.store.get(), Nowhere(), w.roots, &metrics);
  runner.Start();
  const v1::Job done = WaitUntilFinished(*w.store, job.id());
  runner.Stop();
  EXPECT_EQ(done.state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(done.error().rfind("no usable rows: ", 0), 0u) << done.error();
  EXPECT_EQ(done.phases(0).phase(), v1::PHASE_DATA_PREP);
  EXPECT_EQ(done.phases(0).state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(done.phases(1).state(), v1::JOB_STATE_QUEUED);
  EXPECT_EQ(metrics.jobs_failed.Value(), 1);
  EXPECT_EQ(metrics.jobs_succeeded.Value(), 0);
}

struct ContextWorld : OrchestratorWorld {
  explicit ContextWorld(const std::string& name) : OrchestratorWorld(name) {
    auto spec = config::ParseJobSpec(TinySpecYaml());
    EXPECT_TRUE(spec.ok()) << spec.status();
    auto cluster = Cluster::Connect(Nowhere(), &stopping);
    EXPECT_TRUE(cluster.ok()) << cluster.status();
    ctx = std::make_unique<JobContext>(store.get(), &metrics, Create(*store, TinySpecYaml(), work_root), *spec,
                                       std::move(*cluster), &stopping);
  }
  obs::Metrics registry{"orchestrator"};
  OrchestratorMetrics metrics{registry};
  std::atomic<bool> stopping{false};
  std::unique_ptr<JobContext> ctx;
};

TEST(orchestrator, TrainingPhasesRefuseAnEmptySplitBeforeCallingTheLearner) {
  ContextWorld w("empty_split");
  const absl::Status sft = RunSftPhase(*w.ctx);
  EXPECT_EQ(sft.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(sft.message(), "the SFT set is empty");
  const absl::Status rl = RunRlPhase(*w.ctx);
  EXPECT_EQ(rl.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(rl.message(), "the RL set is empty");
  EXPECT_FALSE(w.ctx->learner_holds_job);
  // No held-out set: the evaluation calls nobody (a call would fail) and records rates of 0.
  const absl::Status eval = RecordEval(*w.ctx, "before_sft", false);
  EXPECT_TRUE(eval.ok()) << eval;
  const v1::PhaseProgress& recorded = w.ctx->job.phases(3);
  ASSERT_EQ(recorded.phase(), v1::PHASE_EVAL);
  EXPECT_EQ(recorded.metrics_size(), 3);  // accuracy, format and consistency; no voting without it
  EXPECT_EQ(recorded.metrics().at("before_sft.accuracy"), 0);
}

TEST(orchestrator, CancelAndStopReachTheRunningPhase) {
  ContextWorld w("cancel_check");
  EXPECT_TRUE(w.ctx->CheckCancelled().ok());
  ASSERT_TRUE(w.store->Update(w.ctx->job.id(), [](v1::Job& j) { j.set_state(v1::JOB_STATE_CANCELLED); }, "c").ok());
  EXPECT_TRUE(absl::IsCancelled(w.ctx->CheckCancelled()));
  w.stopping = true;  // a stopping orchestrator wins: the job stays RUNNING on disk and resumes
  EXPECT_TRUE(absl::IsAborted(w.ctx->CheckCancelled()));
}

TEST(orchestrator, ProgressRecordsStepsMetricsAndThePolicyVersion) {
  ContextWorld w("progress");
  w.ctx->current_phase = v1::PHASE_RL;
  w.ctx->phase_start = std::chrono::steady_clock::now();
  w.ctx->phase_prior_seconds = 100;  // an earlier run of the phase, before a restart
  w.ctx->version = 7;
  ASSERT_TRUE(w.ctx->Progress(3, 10, {{"loss", 0.25}}, "rl step 3/10").ok());
  const v1::Job stored = *w.store->Get(w.ctx->job.id());
  const v1::PhaseProgress& rl = stored.phases(2);
  ASSERT_EQ(rl.phase(), v1::PHASE_RL);
  EXPECT_EQ(rl.step(), 3);
  EXPECT_EQ(rl.total_steps(), 10);
  EXPECT_GE(rl.wall_seconds(), 100);
  EXPECT_LT(rl.wall_seconds(), 160);
  EXPECT_EQ(rl.metrics().at("loss"), 0.25);
  EXPECT_EQ(stored.policy_version(), 7);
  EXPECT_EQ(stored.phases(1).step(), 0);  // the other phases are untouched
}

TEST(orchestrator, PromptsAreNamedByBatchPositionIndexAndCopy) {
  std::vector<data::PreferenceSample> set(3);
  for (int i = 0; i < 3; ++i) {
    set[i].id = "s" + std::to_string(i);
    set[i].label = i == 2 ? 2 : 1;
  }
  // A batch across an epoch boundary holds sample 2 twice: the position keeps the ids apart.
  const std::vector<v1::Prompt> prompts = MakePrompts(set, {2, 0, 2}, "rl4", 2);
  ASSERT_EQ(prompts.size(), 6u);
  EXPECT_EQ(prompts[0].prompt_id(), "rl4-0-2-0");
  EXPECT_EQ(prompts[1].prompt_id(), "rl4-0-2-1");
  EXPECT_EQ(prompts[4].prompt_id(), "rl4-2-2-0");
  EXPECT_EQ(prompts[2].preference().sample().sample_id(), "s0");
  EXPECT_EQ(prompts[2].preference().label(), 1);
  EXPECT_EQ(prompts[5].preference().label(), 2);
}

}  // namespace
}  // namespace r1r::orchestrator
