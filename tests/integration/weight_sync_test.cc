// The weight sync group with real processes on loopback: r1r-learner with --weight-sync-store and
// r1r-actors that join it. Broadcast weights generate exactly what streamed weights generate; an
// actor killed and restarted under the same id catches up over the stream at once and is back in the
// group at the next step.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "common/data/synthetic.h"
#include "common/files/remove_tree.h"
#include "common/reward/prompt_template.h"
#include "common/rpc/client.h"
#include "common/tokenizer/bpe_trainer.h"
#include "r1r/v1/actor.grpc.pb.h"
#include "r1r/v1/learner.grpc.pb.h"
#include "tests/integration/http_get.h"
#include "tests/integration/process.h"
#include "tests/integration/wire_prompt_fixture.h"
#include "tests/unit/dist/free_port.h"

namespace r1r::testing {
namespace {

namespace fs = std::filesystem;

constexpr char kSpec[] = R"(name: weight-sync-test
model:
  init: tiny
  dtype: float32
  device: cpu
  tiny: {hidden_size: 32, num_layers: 2, num_heads: 4, num_kv_heads: 2, intermediate_size: 64,
         vision_hidden_size: 32, vision_depth: 2, vision_heads: 2}
data: {source: synthetic, synthetic_n: 8, min_pixels: 3136, max_pixels: 4096}
sft: {optim: {lr: 0.005, warmup_ratio: 0.0}}
)";

struct World {
  std::string dir, work_dir, data_dir, store;
  std::vector<data::SyntheticItem> items;
};

World MakeWorld(const std::string& name) {
  World w;
  w.dir = ::testing::TempDir() + "/weight_sync_" + name;
  EXPECT_TRUE(files::RemoveTree(w.dir).ok()) << w.dir;
  w.work_dir = w.dir + "/work";
  w.data_dir = w.dir + "/data";
  fs::create_directories(w.work_dir + "/model");
  data::SynthOptions o;
  o.n = 8;
  o.image_size = 56;
  EXPECT_TRUE(data::WriteSyntheticDataset(o, w.data_dir).ok());
  std::vector<std::string> corpus;
  for (int64_t i = 0; i < o.n; ++i) {
    w.items.push_back(data::GenerateSyntheticItem(o, i));
    const auto& s = w.items.back().sample;
    corpus.push_back(reward::RenderComparisonPrompt(s.question, s.response1, s.response2));
    corpus.push_back(s.reasoning.value_or(""));
  }
  tokenizer::BpeTrainerOptions bpe;
  bpe.vocab_size = 400;
  EXPECT_TRUE(tokenizer::TrainBpeTokenizerFile(corpus, bpe, w.work_dir + "/model/tokenizer.json").ok());
  w.store = "127.0.0.1:" + std::to_string(dist::testing::FreeLoopbackPort());
  return w;
}

rpc::ClientOptions Client(int port) {
  rpc::ClientOptions o;
  o.target = "127.0.0.1:" + std::to_string(port);
  o.timeout = absl::Seconds(120);
  return o;
}

Process Start(const std::string& service, const World& w, std::vector<std::string> extra, const std::string& log) {
  std::vector<std::string> args = {"--listen",    "127.0.0.1:0",         "--metrics-listen", "127.0.0.1:0",
                                   "--work-root", ::testing::TempDir(), "--data-root",      ::testing::TempDir()};
  args.insert(args.end(), extra.begin(), extra.end());
  auto p = Process::Start(BinDir() + "/r1r-" + service, args, w.dir + "/" + log + ".log");
  EXPECT_TRUE(p.ok()) << p.status();
  return std::move(*p);
}

Process StartLearner(const World& w) {
  return Start("learner", w, {"--weight-sync-store", w.store, "--weight-sync-group-timeout-seconds", "10"}, "learner");
}

// An actor in the sync group when `in_group`, else one that only pulls the stream.
Process StartActor(const World& w, const std::string& id, bool in_group, const std::string& log) {
  std::vector<std::string> extra = {"--actor-id", id, "--max-batch", "4"};
  if (in_group) {
    extra.insert(extra.end(), {"--weight-sync-store", w.store, "--weight-sync-group-timeout-seconds", "10",
                               "--weight-sync-wait-seconds", "20"});
  }
  Process p = Start("actor", w, extra, log);
  // The actor takes its ticket right after start-up; give it that moment before the next publish.
  if (in_group) std::this_thread::sleep_for(std::chrono::milliseconds(500));
  return p;
}

struct Learner {
  explicit Learner(int p) : port(p), stub(v1::Learner::NewStub(*rpc::MakeChannel(Client(p)))) {}
  int port;
  std::unique_ptr<v1::Learner::Stub> stub;
  v1::LearnerState Init(const World& w) {
    v1::InitRequest req;
    req.set_job_id("job-1");
    req.set_spec_yaml(kSpec);
    req.set_work_dir(w.work_dir);
    req.set_phase("sft");
    req.set_total_steps(8);
    grpc::ClientContext ctx;
    rpc::PrepareContext(ctx, Client(port));
    v1::LearnerState state;
    grpc::Status s = stub->Init(&ctx, req, &state);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return state;
  }
  void Sft(const World& w) {
    v1::SftStepRequest req;
    for (int i = 0; i < 2; ++i) {
      auto* e = req.add_examples();
      FillPreference(w.data_dir, w.items[i], e->mutable_preference());
      e->set_target_text(w.items[i].sample.reasoning.value_or("<think>x</think><answer>1</answer>"));
    }
    grpc::ClientContext ctx;
    rpc::PrepareContext(ctx, Client(port));
    v1::StepMetrics m;
    grpc::Status s = stub->SftStep(&ctx, req, &m);
    EXPECT_TRUE(s.ok()) << s.error_message();
  }
};

struct Actor {
  explicit Actor(int p) : port(p), stub(v1::RolloutActor::NewStub(*rpc::MakeChannel(Client(p)))) {}
  int port;
  std::unique_ptr<v1::RolloutActor::Stub> stub;
  // The source ("broadcast" | "stream") of the loaded weights; "" on an error.
  std::string Load(int learner_port, const v1::LearnerState& state) {
    v1::LoadWeightsRequest req;
    req.set_learner_target("127.0.0.1:" + std::to_string(learner_port));
    req.set_version(state.policy_version());
    req.set_model_dir(state.model_dir());
    grpc::ClientContext ctx;
    rpc::PrepareContext(ctx, Client(port));
    v1::LoadWeightsResponse resp;
    grpc::Status s = stub->LoadWeights(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return s.ok() ? resp.source() : "";
  }
  std::vector<v1::Trajectory> Generate(const World& w) {
    v1::GenerateRolloutsRequest req;
    for (int i = 0; i < 3; ++i) {
      auto* p = req.add_prompts();
      p->set_prompt_id("p" + std::to_string(i));
      FillPreference(w.data_dir, w.items[i + 4], p->mutable_preference());
    }
    req.mutable_sampling()->set_temperature(1.0f);
    req.mutable_sampling()->set_max_new_tokens(12);
    req.mutable_sampling()->set_seed(5);
    grpc::ClientContext ctx;
    rpc::PrepareContext(ctx, Client(port));
    auto reader = stub->GenerateRollouts(&ctx, req);
    std::vector<v1::Trajectory> out;
    v1::Trajectory t;
    while (reader->Read(&t)) out.push_back(t);
    grpc::Status s = reader->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }
};

// Same tokens and bit-equal log-probs: the two actors hold the same weights.
void ExpectSameRollouts(const std::vector<v1::Trajectory>& a, const std::vector<v1::Trajectory>& b) {
  ASSERT_EQ(a.size(), b.size());
  ASSERT_FALSE(a.empty());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].response_token_ids_size(), b[i].response_token_ids_size()) << i;
    for (int j = 0; j < a[i].response_token_ids_size(); ++j) {
      EXPECT_EQ(a[i].response_token_ids(j), b[i].response_token_ids(j)) << i << "," << j;
      EXPECT_EQ(a[i].behaviour_logprobs(j), b[i].behaviour_logprobs(j)) << i << "," << j;
    }
  }
}

TEST(loop, BroadcastWeightsGenerateWhatStreamedWeightsGenerate) {
  World w = MakeWorld("equal");
  Process learner_proc = StartLearner(w);
  Process grouped_proc = StartActor(w, "actor-grouped", true, "actor-grouped");
  Process streamed_proc = StartActor(w, "actor-streamed", false, "actor-streamed");
  Learner learner(learner_proc.port());
  Actor grouped(grouped_proc.port()), streamed(streamed_proc.port());

  learner.Init(w);
  learner.Sft(w);  // weights change, the policy version stays 0: the serial tells them apart
  v1::LearnerState state;
  {
    grpc::ClientContext ctx;
    rpc::PrepareContext(ctx, Client(learner.port));
    ASSERT_TRUE(learner.stub->GetState(&ctx, v1::GetStateRequest(), &state).ok());
  }
  EXPECT_EQ(state.weight_sync_store(), w.store);
  EXPECT_GT(state.weights_serial(), 0);
  EXPECT_EQ(grouped.Load(learner.port, state), "broadcast");
  EXPECT_EQ(streamed.Load(learner.port, state), "stream");
  ExpectSameRollouts(grouped.Generate(w), streamed.Generate(w));

  auto learner_page = HttpGet(learner_proc.metrics_port(), "/metrics");
  ASSERT_TRUE(learner_page.ok());
  for (const char* name : {"r1r_learner_weight_broadcast_seconds_count", "r1r_learner_weight_broadcast_bytes_total",
                           "r1r_learner_weight_snapshot_seconds_count", "r1r_learner_weight_sync_group_members"}) {
    EXPECT_NE(learner_page->find(name), std::string::npos) << name;
  }
  auto actor_page = HttpGet(grouped_proc.metrics_port(), "/metrics");
  ASSERT_TRUE(actor_page.ok());
  for (const char* name : {"r1r_actor_weight_broadcast_seconds_count", "r1r_actor_weight_broadcast_bytes_total",
                           "r1r_actor_weight_broadcast_fallbacks_total"}) {
    EXPECT_NE(actor_page->find(name), std::string::npos) << name;
  }
}

TEST(loop, KilledActorCatchesUpOverTheStreamAndRejoinsTheSyncGroup) {
  World w = MakeWorld("rejoin");
  Process learner_proc = StartLearner(w);
  Process stays_proc = StartActor(w, "actor-0", true, "actor-0");
  auto killed_proc = std::make_unique<Process>(StartActor(w, "actor-1", true, "actor-1"));
  Learner learner(learner_proc.port());
  Actor stays(stays_proc.port());

  v1::LearnerState state = learner.Init(w);
  learner.Sft(w);
  EXPECT_EQ(stays.Load(learner.port, state), "broadcast");
  EXPECT_EQ(Actor(killed_proc->port()).Load(learner.port, state), "broadcast");

  killed_proc->Signal(SIGKILL);
  killed_proc->Wait(absl::Seconds(10));
  Process restarted_proc = StartActor(w, "actor-1", true, "actor-1-restarted");
  Actor restarted(restarted_proc.port());
  // Not in the group yet: the current weights come over the stream, without waiting.
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(restarted.Load(learner.port, state), "stream");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 10.0);
  ExpectSameRollouts(restarted.Generate(w), stays.Generate(w));

  // The next step re-forms the group with the restarted actor in the old one's place. The actor that
  // stayed waits through the re-forming; the restarted one may load before it is admitted (then over
  // the stream). From the step after, both take the broadcast.
  learner.Sft(w);
  EXPECT_EQ(stays.Load(learner.port, state), "broadcast");
  EXPECT_NE(restarted.Load(learner.port, state), "");
  ExpectSameRollouts(restarted.Generate(w), stays.Generate(w));
  learner.Sft(w);
  EXPECT_EQ(stays.Load(learner.port, state), "broadcast");
  EXPECT_EQ(restarted.Load(learner.port, state), "broadcast");
  ExpectSameRollouts(restarted.Generate(w), stays.Generate(w));
}

}  // namespace
}  // namespace r1r::testing
