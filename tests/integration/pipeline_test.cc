// The whole system as real processes on loopback: judge, reward, learner, two actors and the
// orchestrator run a tiny job (data prep -> SFT -> StableReinforce -> eval -> publish). Checks that
// it succeeds with finite numbers, that the policy version advances on the actors, that the
// metrics appear, that a job killed mid-RL resumes from its checkpoint with the same step count, that
// a running job goes on by itself when only the learner (mid-RL or before publishing), an actor or
// the reward aggregator restarts, that a job training nothing evaluates and publishes its model, and
// that the whole job runs on two learner ranks.
#include <signal.h>

#include <filesystem>
#include <functional>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/files/remove_tree.h"
#include "common/rpc/client.h"
#include "r1r/v1/actor.grpc.pb.h"
#include "r1r/v1/jobs.grpc.pb.h"
#include "r1r/v1/learner.grpc.pb.h"
#include "tests/integration/http_get.h"
#include "tests/integration/process.h"
#include "tests/integration/prometheus_text.h"
#include "tests/unit/dist/free_port.h"

namespace r1r::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string JobYaml(int rl_steps, int off_policy_steps = 0) {
  return R"(name: tiny-loop
model:
  init: tiny
  dtype: float32
  device: cpu
  tiny: {hidden_size: 32, num_layers: 1, num_heads: 2, num_kv_heads: 1, intermediate_size: 64,
         vision_hidden_size: 32, vision_depth: 1, vision_heads: 2}
tokenizer: {train_vocab_size: 320}
data: {source: synthetic, synthetic_n: 40, seed: 3, heldout_fraction: 0.1, sft_split: all,
       synthetic_questions: [all], synthetic_max_count: 3, synthetic_max_distractors: 0,
       synthetic_grid: 2, synthetic_trace: tally, min_pixels: 3136, max_pixels: 6272}
sft: {epochs: 1, batch_size: 12, optim: {lr: 0.003}}
rl:
  steps: )" + std::to_string(rl_steps) + R"(
  rollout_batch_size: 8
  train_batch_size: 4
  max_new_tokens: 12
  checkpoint_every: 1
  off_policy_steps: )" + std::to_string(off_policy_steps) + R"(
  optim: {lr: 0.0003, warmup_ratio: 0.0}
judge: {backend: rule}
eval: {votes: 2}
)";
}

// A stub for `target`, or null (the test then fails) when no channel can be made.
template <typename Service>
std::unique_ptr<typename Service::Stub> Connect(const std::string& target) {
  rpc::ClientOptions o;
  o.target = target;
  auto channel = rpc::MakeChannel(o);
  EXPECT_TRUE(channel.ok()) << target << ": " << channel.status();
  return channel.ok() ? Service::NewStub(*channel) : nullptr;
}

class Cluster {
 public:
  // learner_ranks 2: two data-parallel learner processes (Gloo on loopback); the others talk to rank 0.
  explicit Cluster(const std::string& name, int learner_ranks = 1)
      : dir_(::testing::TempDir() + "/pipeline_" + name) {
    EXPECT_TRUE(r1r::files::RemoveTree(dir_).ok()) << dir_;
    std::filesystem::create_directories(dir_);
    judge_ = Start("judge", "judge", {"--backend", "rule"});
    reward_ = Start("reward", "reward", {"--judge-target", Addr(judge_)});
    if (learner_ranks == 1) {
      learner_ = Start("learner", "learner", {});
    } else {
      const std::string master = "127.0.0.1:" + std::to_string(dist::testing::FreeLoopbackPort());
      auto rank = [&](int r) -> std::vector<std::string> {
        return {"--dist-world-size", "2", "--dist-rank", std::to_string(r), "--dist-master", master};
      };
      std::thread rank1([&] { learner_rank1_ = Start("learner", "learner-rank1", rank(1)); });  // joins rank 0
      learner_ = Start("learner", "learner", rank(0));
      rank1.join();
    }
    for (int i = 0; i < 2; ++i) {
      actors_.push_back(Start("actor", "actor" + std::to_string(i), {"--actor-id", "a" + std::to_string(i)}));
    }
    StartOrchestrator();
  }

  void StartOrchestrator() {
    orchestrator_ = Start("orchestrator", "orchestrator",
                          {"--state-dir", dir_ + "/state", "--work-root", dir_ + "/jobs", "--learner", Addr(learner_),
                           "--actors", Addr(actors_[0]) + "," + Addr(actors_[1]), "--reward", Addr(reward_)});
    jobs_ = Connect<v1::JobService>(Addr(orchestrator_));
  }

  std::string Submit(const std::string& yaml) {
    grpc::ClientContext ctx;
    v1::SubmitJobRequest req;
    req.set_spec_yaml(yaml);
    v1::SubmitJobResponse resp;
    if (!jobs_) return "";
    grpc::Status s = jobs_->SubmitJob(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.job().id();
  }

  v1::Job Get(const std::string& id) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::GetJobRequest req;
    req.set_id(id);
    v1::Job job;
    // A failed call (the orchestrator restarting) reads as an empty job, which WaitFor keeps polling.
    if (!jobs_ || !jobs_->GetJob(&ctx, req, &job).ok()) return v1::Job();
    return job;
  }

  // Polls until `done(job)` or the timeout; returns the last job record.
  v1::Job WaitFor(const std::string& id, const std::function<bool(const v1::Job&)>& done, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    v1::Job job;
    while (absl::Now() < deadline) {
      job = Get(id);
      if (done(job)) break;
      absl::SleepFor(absl::Milliseconds(300));
    }
    return job;
  }

  int64_t ActorVersion(int i) {
    auto stub = Connect<v1::RolloutActor>(Addr(actors_[i]));
    if (!stub) return -1;
    grpc::ClientContext ctx;
    v1::ActorInfo info;
    const grpc::Status s = stub->GetInfo(&ctx, v1::ActorInfoRequest(), &info);
    EXPECT_TRUE(s.ok()) << "actor " << i << " GetInfo: " << s.error_message();
    return info.policy_version();
  }

  Process& learner() { return learner_; }
  Process& orchestrator() { return orchestrator_; }
  void RestartLearner() { learner_ = Start("learner", "learner", {}); }
  Process& actor(int i) { return actors_[i]; }
  Process& reward() { return reward_; }
  // What learner rank 1 holds (the steps it followed), from its GetState.
  v1::LearnerState Rank1State() {
    auto stub = Connect<v1::Learner>(Addr(learner_rank1_));
    if (!stub) return {};
    grpc::ClientContext ctx;
    v1::LearnerState state;
    const grpc::Status s = stub->GetState(&ctx, v1::GetStateRequest(), &state);
    EXPECT_TRUE(s.ok()) << "learner rank 1 GetState: " << s.error_message();
    return state;
  }
  void RestartRewardOnItsPort() {
    const std::string addr = Addr(reward_);
    reward_ = Start("reward", "reward-restarted", {"--judge-target", Addr(judge_)}, addr);
  }
  void RestartActorOnItsPort(int i) {
    const std::string addr = Addr(actors_[i]);
    actors_[i] = Start("actor", "actor" + std::to_string(i) + "-restarted", {"--actor-id", "a" + std::to_string(i)}, addr);
  }
  // A new learner where the old one listened, as a supervisor would restart it.
  void RestartLearnerOnItsPort() {
    const std::string addr = Addr(learner_);
    learner_ = Start("learner", "learner-restarted", {}, addr);
  }
  const std::string& dir() const { return dir_; }
  // Every event the orchestrator recorded for the job, one JSON object per line.
  std::string EventLog(const std::string& id) const {
    std::ifstream in(dir_ + "/state/jobs/" + id + ".events.jsonl");
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

 private:
  static std::string Addr(const Process& p) { return "127.0.0.1:" + std::to_string(p.port()); }

  Process Start(const std::string& service, const std::string& log, std::vector<std::string> extra,
                const std::string& listen = "127.0.0.1:0") {
    std::vector<std::string> args = {"--listen", listen, "--metrics-listen", "127.0.0.1:0"};
    if (service == "learner" || service == "actor") {  // the jobs' work dirs and data lie under dir_
      args.insert(args.end(), {"--work-root", dir_, "--data-root", dir_});
    } else if (service == "orchestrator") {
      args.insert(args.end(), {"--data-root", dir_});
    }
    args.insert(args.end(), extra.begin(), extra.end());
    auto p = Process::Start(BinDir() + "/r1r-" + service, args, dir_ + "/" + log + ".log");
    EXPECT_TRUE(p.ok()) << p.status();
    return std::move(*p);
  }

  std::string dir_;
  Process judge_, reward_, learner_, learner_rank1_, orchestrator_;
  std::vector<Process> actors_;
  std::unique_ptr<v1::JobService::Stub> jobs_;
};

const v1::PhaseProgress* PhaseOf(const v1::Job& job, v1::Phase phase) {
  for (const auto& p : job.phases()) {
    if (p.phase() == phase) return &p;
  }
  return nullptr;
}

bool Finished(const v1::Job& j) {
  return j.state() == v1::JOB_STATE_SUCCEEDED || j.state() == v1::JOB_STATE_FAILED || j.state() == v1::JOB_STATE_CANCELLED;
}

TEST(loop, ShortRunLearnsFiniteAdvancesVersionsAndExportsMetrics) {
  Cluster c("short");
  const std::string id = c.Submit(JobYaml(3));
  v1::Job job = c.WaitFor(id, Finished, absl::Minutes(8));
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error() << " (logs in " << c.dir() << ")";
  const v1::PhaseProgress* rl = PhaseOf(job, v1::PHASE_RL);
  ASSERT_NE(rl, nullptr);
  EXPECT_EQ(rl->step(), 3);
  ASSERT_TRUE(rl->metrics().count("loss"));
  EXPECT_TRUE(std::isfinite(rl->metrics().at("loss")));
  EXPECT_GE(rl->metrics().at("adv_filtered_fraction"), 0.0);
  EXPECT_GE(job.policy_version(), 3);  // one published version per RL step (after the SFT ones)
  EXPECT_EQ(c.ActorVersion(0), job.policy_version());
  EXPECT_EQ(c.ActorVersion(1), job.policy_version());
  const v1::PhaseProgress* eval = PhaseOf(job, v1::PHASE_EVAL);
  ASSERT_NE(eval, nullptr);
  for (const char* key : {"before_sft.accuracy", "after_sft.accuracy", "after_rl.accuracy", "after_rl.voting_accuracy"}) {
    ASSERT_TRUE(eval->metrics().count(key)) << key;
    EXPECT_GE(eval->metrics().at(key), 0.0);
    EXPECT_LE(eval->metrics().at(key), 1.0);
  }
  EXPECT_TRUE(std::filesystem::exists(job.work_dir() + "/published/config.json"));
  // The spec's synthetic layout and trace style reached the generator.
  std::ifstream manifest(job.work_dir() + "/data/manifest.json");
  std::stringstream manifest_text;
  manifest_text << manifest.rdbuf();
  EXPECT_THAT(manifest_text.str(), HasSubstr("\"grid\": 2"));
  EXPECT_THAT(manifest_text.str(), HasSubstr("\"trace\": \"tally\""));
  // The published model says which policy version it is (r1r-serve reports it).
  std::ifstream state(job.work_dir() + "/published/state.json");
  std::stringstream state_text;
  state_text << state.rdbuf();
  EXPECT_THAT(state_text.str(), HasSubstr("\"policy_version\": " + std::to_string(job.policy_version())));

  auto body = HttpGet(c.orchestrator().metrics_port(), "/metrics");
  ASSERT_TRUE(body.ok());
  ASSERT_TRUE(ParsePrometheusText(*body).ok());
  EXPECT_THAT(*body, HasSubstr("r1r_orchestrator_rl_part_seconds_count{part=\"generation\""));
  auto learner_metrics = HttpGet(c.learner().metrics_port(), "/metrics");
  ASSERT_TRUE(learner_metrics.ok());
  ASSERT_TRUE(ParsePrometheusText(*learner_metrics).ok());
  EXPECT_THAT(*learner_metrics, HasSubstr("r1r_rl_clip_fraction"));
  EXPECT_THAT(*learner_metrics, HasSubstr("r1r_rl_adv_filtered_fraction"));
}

// A job without RL whose final evaluation's votes outnumber what one GenerateRollouts call may carry
// (1024 prompts): 120 held-out pairs x 20 votes over two actors is 1200 prompts per actor, so the
// orchestrator has to split its calls. Before it did, the demo failed at its last eval with 600 pairs.
TEST(loop, EvalSplitsVotesIntoCallsTheActorsAccept) {
  Cluster c("eval_votes");
  std::string yaml = JobYaml(1);
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"synthetic_n: 40, seed: 3, heldout_fraction: 0.1", "synthetic_n: 240, seed: 3, heldout_fraction: 0.5"},
           {"rl:\n", "rl:\n  enabled: false\n"},
           {"max_new_tokens: 12", "max_new_tokens: 2"},
           {"eval: {votes: 2}", "eval: {votes: 20}"}}) {
    const size_t at = yaml.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    yaml.replace(at, from.size(), to);
  }
  const std::string id = c.Submit(yaml);
  v1::Job job = c.WaitFor(id, Finished, absl::Minutes(8));
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error() << " (logs in " << c.dir() << ")";
  const v1::PhaseProgress* eval = PhaseOf(job, v1::PHASE_EVAL);
  ASSERT_NE(eval, nullptr);
  ASSERT_TRUE(eval->metrics().count("after_sft_final.voting_accuracy"));
  EXPECT_GE(eval->metrics().at("after_sft_final.voting_accuracy"), 0.0);
  EXPECT_LE(eval->metrics().at("after_sft_final.voting_accuracy"), 1.0);
}

// Off-policy mode: step t+1 is generated while the learner trains step t, so from the second step on
// the learner trains on rollouts of the version before the one it holds, and still steps every time.
TEST(loop, OffPolicyRunTrainsOnOneVersionOldRollouts) {
  Cluster c("off_policy");
  const std::string id = c.Submit(JobYaml(3, /*off_policy_steps=*/1));
  v1::Job job = c.WaitFor(id, Finished, absl::Minutes(8));
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error() << " (logs in " << c.dir() << ")";
  const v1::PhaseProgress* rl = PhaseOf(job, v1::PHASE_RL);
  ASSERT_NE(rl, nullptr);
  EXPECT_EQ(rl->step(), 3);
  EXPECT_TRUE(std::isfinite(rl->metrics().at("loss")));
  EXPECT_EQ(rl->metrics().at("stale_fraction"), 1.0);  // the last step's rollouts came from the version before
  EXPECT_EQ(rl->metrics().at("optimizer_steps"), 2);   // and still trained: 8 rollouts in minibatches of 4
  EXPECT_EQ(c.ActorVersion(0), job.policy_version());  // synced after the loop for the evaluations
  auto learner_metrics = HttpGet(c.learner().metrics_port(), "/metrics");
  ASSERT_TRUE(learner_metrics.ok());
  EXPECT_THAT(*learner_metrics, HasSubstr("r1r_learner_stale_trajectories_total"));
}

// The job once its RL phase has done two steps (or once it finished, too early to interrupt).
v1::Job WaitForRlStep2(Cluster& c, const std::string& id) {
  return c.WaitFor(
      id,
      [](const v1::Job& j) {
        const v1::PhaseProgress* rl = PhaseOf(j, v1::PHASE_RL);
        return Finished(j) || (rl && rl->step() >= 2);
      },
      absl::Minutes(6));
}

// Once the job's RL phase has done two steps: SIGKILLs `victim`, leaves it down for `down`, brings it
// back with `restart` (on its port) and returns the job when it has finished. A job that finished
// before the kill fails the test.
v1::Job KillAndRestartMidRl(Cluster& c, const std::string& id, Process& victim, absl::Duration down,
                            const std::function<void()>& restart) {
  const v1::Job job = WaitForRlStep2(c, id);
  if (Finished(job)) {
    ADD_FAILURE() << "finished before it could be interrupted: " << job.error();
    return job;
  }
  victim.Signal(SIGKILL);
  victim.Wait(absl::Seconds(10));
  absl::SleepFor(down);  // the orchestrator's calls fail meanwhile
  restart();
  return c.WaitFor(id, Finished, absl::Minutes(6));
}

TEST(loop, JobKilledMidRlResumesFromCheckpointWithSameStepCount) {
  Cluster c("resume");
  const std::string id = c.Submit(JobYaml(5));
  v1::Job job = WaitForRlStep2(c, id);
  ASSERT_FALSE(Finished(job)) << "finished before it could be interrupted: " << job.error();
  const int64_t step_at_kill = PhaseOf(job, v1::PHASE_RL)->step();
  c.orchestrator().Signal(SIGKILL);
  c.learner().Signal(SIGKILL);
  c.orchestrator().Wait(absl::Seconds(10));
  c.learner().Wait(absl::Seconds(10));
  c.RestartLearner();
  c.StartOrchestrator();
  job = c.WaitFor(id, Finished, absl::Minutes(6));
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error() << " (logs in " << c.dir() << ")";
  const v1::PhaseProgress* rl = PhaseOf(job, v1::PHASE_RL);
  EXPECT_EQ(rl->step(), 5);
  EXPECT_EQ(rl->total_steps(), 5);
  EXPECT_GE(step_at_kill, 2);
  // The learner resumed at its last checkpoint (every step), so the version is one per RL step too.
  EXPECT_EQ(c.ActorVersion(0), job.policy_version());
}

// Only the learner dies mid-RL (as a crash or a lost rank would end it) and comes back on its port: the
// orchestrator notices it lost the job, resumes RL from the last checkpoint and the job succeeds.
TEST(loop, LearnerRestartedMidRlIsResumedByTheRunningJob) {
  Cluster c("learner-restart");
  const std::string id = c.Submit(JobYaml(5));
  const v1::Job job =
      KillAndRestartMidRl(c, id, c.learner(), absl::Seconds(2), [&] { c.RestartLearnerOnItsPort(); });
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error() << " (logs in " << c.dir() << ")";
  EXPECT_EQ(PhaseOf(job, v1::PHASE_RL)->step(), 5);
  EXPECT_EQ(c.ActorVersion(0), job.policy_version());
  const std::string events = c.EventLog(id);
  EXPECT_THAT(events, HasSubstr("the learner restarted"));
  EXPECT_THAT(events, HasSubstr("resuming RL from the last checkpoint (recovery 1 of 3)"));
}

// A job that trains nothing (sft and rl disabled) evaluates the model it names and publishes it.
TEST(loop, EvalOnlyJobEvaluatesAndPublishesItsModel) {
  Cluster c("eval-only");
  std::string yaml = JobYaml(1);
  yaml.replace(yaml.find("sft: {"), 6, "sft: {enabled: false, ");
  yaml.replace(yaml.find("rl:\n"), 4, "rl:\n  enabled: false\n");
  const std::string id = c.Submit(yaml);
  const v1::Job job = c.WaitFor(id, Finished, absl::Minutes(6));
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error() << " (logs in " << c.dir() << ")";
  const v1::PhaseProgress* eval = PhaseOf(job, v1::PHASE_EVAL);
  ASSERT_NE(eval, nullptr);
  ASSERT_EQ(eval->metrics().count("final.accuracy"), 1u);
  EXPECT_GE(eval->metrics().at("final.accuracy"), 0.0);
  EXPECT_LE(eval->metrics().at("final.accuracy"), 1.0);
  EXPECT_TRUE(std::filesystem::exists(job.work_dir() + "/published/model.safetensors")) << job.work_dir();
}

// The learner restarts while the job evaluates (on the actors): publishing then finds it without the
// job, has it load the job's last checkpoint, and exports the trained weights.
TEST(loop, LearnerRestartedBeforePublishLoadsTheLastCheckpoint) {
  Cluster c("restart-before-publish");
  std::string yaml = JobYaml(2);
  yaml.replace(yaml.find("heldout_fraction: 0.1"), 21, "heldout_fraction: 0.5");
  yaml.replace(yaml.find("votes: 2"), 8, "votes: 32");  // an evaluation long enough to restart in
  const std::string id = c.Submit(yaml);
  v1::Job job = c.WaitFor(
      id,
      [](const v1::Job& j) {
        const v1::PhaseProgress* eval = PhaseOf(j, v1::PHASE_EVAL);
        return Finished(j) || (eval && eval->state() == v1::JOB_STATE_RUNNING);
      },
      absl::Minutes(6));
  ASSERT_FALSE(Finished(job)) << "finished before it could be interrupted: " << job.error();
  c.learner().Signal(SIGKILL);
  c.learner().Wait(absl::Seconds(10));
  c.RestartLearnerOnItsPort();
  job = c.WaitFor(id, Finished, absl::Minutes(6));
  ASSERT_EQ(PhaseOf(job, v1::PHASE_EVAL)->state(), v1::JOB_STATE_SUCCEEDED);
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error() << " (logs in " << c.dir() << ")";
  std::ifstream state(job.work_dir() + "/published/state.json");
  std::stringstream text;
  text << state.rdbuf();
  EXPECT_THAT(text.str(), HasSubstr("\"rl_steps\": 2")) << text.str();
  // Publishing itself re-initialised the learner: no phase had to be run again.
  EXPECT_THAT(c.EventLog(id), Not(HasSubstr("the learner restarted")));
}

// An actor dies mid-RL and comes back on its port without weights, after longer than a call's retries
// last (about 6 s): whatever call it missed (a weight sync or a generation), the orchestrator waits
// for it, loads the current version into it, and the job succeeds.
TEST(loop, ActorRestartedMidRlGetsTheWeightsAgain) {
  Cluster c("actor-restart");
  const std::string id = c.Submit(JobYaml(5));
  const v1::Job job =
      KillAndRestartMidRl(c, id, c.actor(1), absl::Seconds(9), [&] { c.RestartActorOnItsPort(1); });
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error() << " (logs in " << c.dir() << ")";
  EXPECT_EQ(PhaseOf(job, v1::PHASE_RL)->step(), 5);
  EXPECT_EQ(c.ActorVersion(1), job.policy_version());
  EXPECT_THAT(c.EventLog(id), ::testing::AnyOf(HasSubstr("an actor did not take the weights"),
                                           HasSubstr("into every actor again (recovery 1 of 3)")));
}

// The reward aggregator (stateless) is down for 9 s mid-RL, longer than a call's default retries: the
// orchestrator's scoring waits for it and the job succeeds.
TEST(loop, RewardServiceRestartedMidRlIsWaitedFor) {
  Cluster c("reward-restart");
  const std::string id = c.Submit(JobYaml(5));
  const v1::Job job =
      KillAndRestartMidRl(c, id, c.reward(), absl::Seconds(9), [&] { c.RestartRewardOnItsPort(); });
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error() << " (logs in " << c.dir() << ")";
  EXPECT_EQ(PhaseOf(job, v1::PHASE_RL)->step(), 5);
}

// The orchestrator is told to stop while the reward aggregator is down and its scoring call waits for
// it: the wait ends at once (not after two minutes of retries), the job is left to resume, and after
// both come back it finishes.
TEST(loop, StoppingOrchestratorDoesNotWaitOutADownRewardService) {
  Cluster c("reward-down-stop");
  const std::string id = c.Submit(JobYaml(5));
  // Down 6 s: the step's generation ends, and its scoring call is retrying when the stop comes.
  const v1::Job job = KillAndRestartMidRl(c, id, c.reward(), absl::Seconds(6), [&] {
    const absl::Time stop_sent = absl::Now();
    c.orchestrator().Signal(SIGTERM);
    const int status = c.orchestrator().Wait(absl::Seconds(60));
    EXPECT_EQ(status, 0);
    EXPECT_LT(absl::Now() - stop_sent, absl::Seconds(20));
    if (status == -1) {  // still running: a second orchestrator beside it would race for the job
      c.orchestrator().Signal(SIGKILL);
      c.orchestrator().Wait(absl::Seconds(10));
    }
    c.RestartRewardOnItsPort();
    c.StartOrchestrator();
  });
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error() << " (logs in " << c.dir() << ")";
  EXPECT_EQ(PhaseOf(job, v1::PHASE_RL)->step(), 5);
}

// The whole job with two learner ranks: the orchestrator and the actors talk to rank 0 only, rank 1
// trains its share of every batch, and the job ends as it does with one learner.
TEST(loop, TwoLearnerRanksRunTheWholeJob) {
  Cluster c("two-ranks", 2);
  const std::string id = c.Submit(JobYaml(3));
  const v1::Job job = c.WaitFor(id, Finished, absl::Minutes(6));
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error() << " (logs in " << c.dir() << ")";
  EXPECT_EQ(PhaseOf(job, v1::PHASE_RL)->step(), 3);
  EXPECT_EQ(c.ActorVersion(0), job.policy_version());
  EXPECT_GT(job.policy_version(), 0);
  const v1::LearnerState rank1 = c.Rank1State();
  EXPECT_EQ(rank1.job_id(), id);
  EXPECT_EQ(rank1.rl_steps(), 3);
  EXPECT_EQ(rank1.policy_version(), job.policy_version());
}

}  // namespace
}  // namespace r1r::testing
