// r1r-learner + r1r-actor as real processes on loopback: SFT steps, weights v0 to the actor,
// rollouts, a StableReinforce step, weights v1 to the actor, version checks, and a learner killed
// with SIGKILL that resumes from its checkpoint with the same version, counters and weights.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "common/data/synthetic.h"
#include "common/files/remove_tree.h"
#include "common/rpc/client.h"
#include "r1r/v1/actor.grpc.pb.h"
#include "r1r/v1/learner.grpc.pb.h"
#include "tests/integration/http_get.h"
#include "tests/integration/process.h"
#include "tests/integration/wire_prompt_fixture.h"
#include "tests/support/tiny_model_dir.h"

namespace r1r::testing {
namespace {

namespace fs = std::filesystem;

constexpr char kSpec[] = R"(name: loop-test
model:
  init: tiny
  dtype: float32
  device: cpu
  tiny: {hidden_size: 32, num_layers: 2, num_heads: 4, num_kv_heads: 2, intermediate_size: 64,
         vision_hidden_size: 32, vision_depth: 2, vision_heads: 2}
data: {source: synthetic, synthetic_n: 8, min_pixels: 3136, max_pixels: 4096}
sft: {optim: {lr: 0.005, warmup_ratio: 0.0}}
rl: {rollout_batch_size: 4, train_batch_size: 4, checkpoint_every: 100, optim: {lr: 0.001, warmup_ratio: 0.0}}
judge: {backend: rule}
)";

struct World {
  std::string dir, work_dir, data_dir;
  std::vector<data::SyntheticItem> items;
};

// What the orchestrator's data prep leaves behind: a dataset and work_dir/model/tokenizer.json.
World MakeWorld(const std::string& name) {
  World w;
  w.dir = ::testing::TempDir() + "/loop_" + name;
  EXPECT_TRUE(r1r::files::RemoveTree(w.dir).ok()) << w.dir;
  w.work_dir = w.dir + "/work";
  w.data_dir = w.dir + "/data";
  test_support::TinyModelDirOptions o;
  o.seed = 1;  // the data these tests were written against
  auto made = test_support::MakeTinyDataAndTokenizer(w.data_dir, w.work_dir + "/model", o);
  EXPECT_TRUE(made.ok()) << made.status();
  if (made.ok()) w.items = std::move(made->items);
  return w;
}

Process Start(const std::string& service, const std::string& dir, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"};
  if (service == "learner" || service == "actor") {  // the tests' work dirs and data lie under TempDir
    args.insert(args.end(), {"--work-root", ::testing::TempDir(), "--data-root", ::testing::TempDir()});
  }
  args.insert(args.end(), extra.begin(), extra.end());
  auto p = Process::Start(BinDir() + "/r1r-" + service, args, dir + "/" + service + ".log");
  EXPECT_TRUE(p.ok()) << p.status();
  return std::move(*p);
}

rpc::ClientOptions Client(int port) {
  rpc::ClientOptions o;
  o.target = "127.0.0.1:" + std::to_string(port);
  o.timeout = absl::Seconds(120);
  return o;
}

template <typename Stub>
std::unique_ptr<Stub> Connect(int port) {
  return std::make_unique<Stub>(*rpc::MakeChannel(Client(port)));
}

struct Learner {
  std::unique_ptr<v1::Learner::Stub> stub;
  int port;
  grpc::Status Init(const World& w, const std::string& phase, bool resume, v1::LearnerState* state,
                    const std::string& spec = kSpec) {
    v1::InitRequest req;
    req.set_job_id("job-1");
    req.set_spec_yaml(spec);
    req.set_work_dir(w.work_dir);
    req.set_phase(phase);
    req.set_resume(resume);
    req.set_total_steps(4);
    grpc::ClientContext ctx;
    rpc::PrepareContext(ctx, Client(port));
    return stub->Init(&ctx, req, state);
  }
  grpc::Status Sft(const World& w, v1::StepMetrics* m) {
    v1::SftStepRequest req;
    for (int i = 0; i < 4; ++i) {
      auto* e = req.add_examples();
      FillPreference(w.data_dir, w.items[i], e->mutable_preference());
      e->set_target_text(w.items[i].sample.reasoning.value_or("<think>x</think><answer>1</answer>"));
    }
    grpc::ClientContext ctx;
    rpc::PrepareContext(ctx, Client(port));
    return stub->SftStep(&ctx, req, m);
  }
  grpc::Status State(v1::LearnerState* s) {
    grpc::ClientContext ctx;
    rpc::PrepareContext(ctx, Client(port));
    return stub->GetState(&ctx, v1::GetStateRequest(), s);
  }
};

struct Actor {
  std::unique_ptr<v1::RolloutActor::Stub> stub;
  int port;
  grpc::Status Load(int learner_port, int64_t version, const std::string& model_dir, v1::LoadWeightsResponse* r) {
    v1::LoadWeightsRequest req;
    req.set_learner_target("127.0.0.1:" + std::to_string(learner_port));
    req.set_version(version);
    req.set_model_dir(model_dir);
    grpc::ClientContext ctx;
    rpc::PrepareContext(ctx, Client(port));
    return stub->LoadWeights(&ctx, req, r);
  }
  grpc::Status Generate(const World& w, int64_t expected_version, std::vector<v1::Trajectory>* out) {
    v1::GenerateRolloutsRequest req;
    for (int i = 0; i < 4; ++i) {
      auto* p = req.add_prompts();
      p->set_prompt_id("p" + std::to_string(i));
      FillPreference(w.data_dir, w.items[i + 4], p->mutable_preference());
    }
    req.mutable_sampling()->set_temperature(1.0f);
    req.mutable_sampling()->set_max_new_tokens(16);
    req.mutable_sampling()->set_seed(11);
    req.set_expected_policy_version(expected_version);
    grpc::ClientContext ctx;
    rpc::PrepareContext(ctx, Client(port));
    auto reader = stub->GenerateRollouts(&ctx, req);
    v1::Trajectory t;
    out->clear();
    while (reader->Read(&t)) out->push_back(t);
    return reader->Finish();
  }
  int64_t Version() {
    v1::ActorInfo info;
    grpc::ClientContext ctx;
    rpc::PrepareContext(ctx, Client(port));
    EXPECT_TRUE(stub->GetInfo(&ctx, v1::ActorInfoRequest(), &info).ok());
    return info.policy_version();
  }
};

void ExpectMetrics(int port, const std::vector<std::string>& names) {
  auto body = HttpGet(port, "/metrics");
  ASSERT_TRUE(body.ok()) << body.status();
  for (const std::string& name : names) EXPECT_NE(body->find(name), std::string::npos) << name;
}

bool SameRollouts(const std::vector<v1::Trajectory>& a, const std::vector<v1::Trajectory>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].response_token_ids_size() != b[i].response_token_ids_size()) return false;
    for (int j = 0; j < a[i].response_token_ids_size(); ++j) {
      if (a[i].response_token_ids(j) != b[i].response_token_ids(j)) return false;
      if (a[i].behaviour_logprobs(j) != b[i].behaviour_logprobs(j)) return false;
    }
  }
  return true;
}

TEST(loop, LearnerAndActorTrainSyncWeightsAndResumeAfterKill) {
  World w = MakeWorld("learner_actor");
  auto learner_proc = std::make_unique<Process>(Start("learner", w.dir));
  Process actor_proc = Start("actor", w.dir, {"--actor-id", "actor-a", "--max-batch", "2"});
  Learner learner{Connect<v1::Learner::Stub>(learner_proc->port()), learner_proc->port()};
  Actor actor{Connect<v1::RolloutActor::Stub>(actor_proc.port()), actor_proc.port()};

  // SFT: the loss falls over a few steps on the same batch; the version stays 0.
  v1::LearnerState state;
  ASSERT_TRUE(learner.Init(w, "sft", false, &state).ok());
  EXPECT_EQ(state.policy_version(), 0);
  EXPECT_EQ(state.model_dir(), w.work_dir + "/model");
  EXPECT_TRUE(fs::exists(w.work_dir + "/model/config.json"));
  double first_loss = 0, last_loss = 0;
  for (int i = 0; i < 3; ++i) {
    v1::StepMetrics m;
    grpc::Status s = learner.Sft(w, &m);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_TRUE(std::isfinite(m.loss()));
    EXPECT_FALSE(m.skipped());
    EXPECT_EQ(m.policy_version(), 0);
    (i == 0 ? first_loss : last_loss) = m.loss();
  }
  EXPECT_LT(last_loss, first_loss);

  // Weights v0 to the actor; rollouts carry version 0 and finite log-probs.
  v1::LoadWeightsResponse loaded;
  grpc::Status s = actor.Load(learner.port, 0, state.model_dir(), &loaded);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(loaded.version(), 0);
  EXPECT_GT(loaded.bytes(), 10'000);
  std::printf("weight sync: %.2f MB in %.3f s (%.1f MB/s)\n", loaded.bytes() / 1e6, loaded.seconds(),
              loaded.bytes() / 1e6 / std::max(1e-9, loaded.seconds()));
  EXPECT_EQ(actor.Version(), 0);
  std::vector<v1::Trajectory> v0;
  s = actor.Generate(w, 0, &v0);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(v0.size(), 4u);
  for (const auto& t : v0) {
    EXPECT_EQ(t.policy_version(), 0);
    EXPECT_EQ(t.actor_id(), "actor-a");
    EXPECT_GT(t.prompt_token_ids_size(), 10);
    ASSERT_GE(t.response_token_ids_size(), 1);
    EXPECT_LE(t.response_token_ids_size(), 16);
    ASSERT_EQ(t.behaviour_logprobs_size(), t.response_token_ids_size());
    for (float lp : t.behaviour_logprobs()) EXPECT_TRUE(std::isfinite(lp) && lp <= 0);
    EXPECT_NE(t.finish_reason(), v1::FINISH_REASON_UNSPECIFIED);
  }
  std::vector<v1::Trajectory> again;
  ASSERT_TRUE(actor.Generate(w, 0, &again).ok());
  EXPECT_TRUE(SameRollouts(v0, again)) << "seeded sampling must repeat";

  // RL: one StableReinforce step on those rollouts with made-up rewards publishes version 1.
  ASSERT_TRUE(learner.Init(w, "rl", false, &state).ok());
  EXPECT_EQ(state.policy_version(), 0);
  v1::ExperienceBatch batch;
  const float rewards[] = {2.0f, 0.0f, 1.0f, -0.5f};
  for (size_t i = 0; i < v0.size(); ++i) {
    *batch.add_trajectories() = v0[i];
    auto* r = batch.add_rewards();
    r->set_prompt_id(v0[i].prompt_id());
    r->set_total(rewards[i]);
  }
  v1::StepMetrics rl;
  {
    grpc::ClientContext ctx;
    rpc::PrepareContext(ctx, Client(learner.port));
    s = learner.stub->RlStep(&ctx, batch, &rl);
  }
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(std::isfinite(rl.loss()));
  EXPECT_FALSE(rl.skipped());
  EXPECT_EQ(rl.policy_version(), 1);
  EXPECT_GE(rl.metrics().at("adv_filtered_fraction"), 0.0);
  EXPECT_LE(rl.metrics().at("adv_filtered_fraction"), 1.0);
  // Actor and learner ran the same float32 CPU model: their log-probs agree up to the probability
  // mass of the vision placeholders, which the actor never samples (~5/400 at random init).
  EXPECT_LT(rl.metrics().at("logprob_mismatch"), 0.03);
  std::printf("rl step: %.3f s, loss %.4f\n", rl.seconds(), rl.loss());

  // The same (now stale) experience again: refused, the learner is at version 1.
  {
    grpc::ClientContext ctx;
    rpc::PrepareContext(ctx, Client(learner.port));
    v1::StepMetrics ignored;
    EXPECT_EQ(learner.stub->RlStep(&ctx, batch, &ignored).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  }
  // The actor still holds v0: asking it for v1 rollouts is refused.
  std::vector<v1::Trajectory> none;
  EXPECT_EQ(actor.Generate(w, 1, &none).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  // Asking the learner for a version it does not hold is refused too.
  EXPECT_EQ(actor.Load(learner.port, 5, state.model_dir(), &loaded).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);

  ASSERT_TRUE(actor.Load(learner.port, 1, "", &loaded).ok());
  EXPECT_EQ(loaded.version(), 1);
  EXPECT_EQ(actor.Version(), 1);
  std::vector<v1::Trajectory> v1_rollouts;
  ASSERT_TRUE(actor.Generate(w, 1, &v1_rollouts).ok());
  for (const auto& t : v1_rollouts) EXPECT_EQ(t.policy_version(), 1);
  EXPECT_FALSE(SameRollouts(v0, v1_rollouts)) << "new weights must change the sampled log-probs";

  // Metrics of both processes.
  ExpectMetrics(learner_proc->metrics_port(),
                {"r1r_learner_step_seconds", "r1r_rl_clip_fraction", "r1r_rl_preclip_fraction",
                 "r1r_rl_adv_filtered_fraction", "r1r_learner_policy_version", "r1r_learner_loss",
                 "r1r_learner_weight_sync_bytes_total", "r1r_learner_skipped_steps_total"});
  ExpectMetrics(actor_proc.metrics_port(),
                {"r1r_actor_weight_sync_seconds", "r1r_actor_weight_sync_bytes_total", "r1r_actor_tokens_per_second",
                 "r1r_actor_inflight_requests", "r1r_actor_policy_version"});

  // Resume: checkpoint, SIGKILL, restart, Init(resume) restores version, counters and weights.
  v1::SaveCheckpointResponse saved;
  {
    v1::SaveCheckpointRequest req;
    req.set_data_cursor(7);
    req.set_export_dir(w.dir + "/published");
    grpc::ClientContext ctx;
    rpc::PrepareContext(ctx, Client(learner.port));
    s = learner.stub->SaveCheckpoint(&ctx, req, &saved);
  }
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(fs::exists(saved.path() + "/model.safetensors"));
  EXPECT_TRUE(fs::exists(w.dir + "/published/config.json"));
  v1::LearnerState before;
  ASSERT_TRUE(learner.State(&before).ok());
  learner_proc->Signal(SIGKILL);
  learner_proc->Wait(absl::Seconds(10));
  learner_proc = std::make_unique<Process>(Start("learner", w.dir));
  learner = Learner{Connect<v1::Learner::Stub>(learner_proc->port()), learner_proc->port()};
  v1::LearnerState after;
  ASSERT_TRUE(learner.Init(w, "rl", true, &after).ok());
  EXPECT_EQ(after.policy_version(), 1);
  EXPECT_EQ(after.policy_version(), before.policy_version());
  EXPECT_EQ(after.sft_steps(), 3);
  EXPECT_EQ(after.rl_steps(), 1);
  EXPECT_EQ(after.data_cursor(), 7);
  EXPECT_EQ(after.last_checkpoint(), saved.path());
  // The restarted learner serves the same weights: the actor samples exactly what it did before.
  ASSERT_TRUE(actor.Load(learner.port, 1, "", &loaded).ok());
  std::vector<v1::Trajectory> resumed;
  ASSERT_TRUE(actor.Generate(w, 1, &resumed).ok());
  EXPECT_TRUE(SameRollouts(v1_rollouts, resumed));
}

// Issue 16: SaveCheckpoint.export_dir once replaced any directory (the orchestrator's job records
// with it); Init.work_dir and image paths could name anything; a FIFO image blocked the learner.
TEST(files, LearnerConfinesPathsAndReplacesOnlyDirectoriesItCreated) {
  World w = MakeWorld("confine");
  Process learner_proc = Start("learner", w.dir);
  Learner learner{Connect<v1::Learner::Stub>(learner_proc.port()), learner_proc.port()};
  auto init = [&](const std::string& work_dir) {
    World other = w;
    other.work_dir = work_dir;
    v1::LearnerState state;
    return learner.Init(other, "sft", false, &state);
  };
  for (const std::string& outside : {std::string("/var/tmp/r1r-outside-work"), w.dir + "/../../../../../../etc"}) {
    const grpc::Status s = init(outside);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << outside << ": " << s.error_message();
    EXPECT_NE(s.error_message().find("work_dir"), std::string::npos) << s.error_message();
  }
  ASSERT_TRUE(init(w.work_dir).ok());

  // Image paths: a FIFO (with a sha256, so it is hashed) and /dev/zero are refused at once.
  ASSERT_EQ(::mkfifo((w.data_dir + "/fifo.png").c_str(), 0600), 0);
  for (const auto& [image, code] : std::vector<std::pair<std::string, grpc::StatusCode>>{
           {w.data_dir + "/fifo.png", grpc::StatusCode::INVALID_ARGUMENT},
           {"/dev/zero", grpc::StatusCode::PERMISSION_DENIED},
           {w.data_dir + "/../../../../../../etc/hostname", grpc::StatusCode::PERMISSION_DENIED}}) {
    v1::SftStepRequest req;
    auto* e = req.add_examples();
    FillPreference(w.data_dir, w.items[0], e->mutable_preference());
    e->mutable_preference()->mutable_sample()->set_image_path(image);
    e->mutable_preference()->mutable_sample()->set_image_sha256(std::string(64, 'a'));
    e->set_target_text("<answer>1</answer>");
    grpc::ClientContext ctx;
    rpc::PrepareContext(ctx, Client(learner.port));
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    v1::StepMetrics m;
    const grpc::Status s = learner.stub->SftStep(&ctx, req, &m);
    EXPECT_EQ(s.error_code(), code) << image << ": " << s.error_message();
    EXPECT_NE(s.error_message().find("examples[0].preference.sample.image_path"), std::string::npos) << s.error_message();
  }

  // NaN behaviour log-probs never reach the loss.
  {
    v1::ExperienceBatch req;
    auto* t = req.add_trajectories();
    t->set_prompt_id("p");
    t->add_prompt_token_ids(1);
    t->add_response_token_ids(2);
    t->add_behaviour_logprobs(std::nanf(""));
    req.add_rewards()->set_prompt_id("p");
    grpc::ClientContext ctx;
    rpc::PrepareContext(ctx, Client(learner.port));
    v1::StepMetrics m;
    const grpc::Status s = learner.stub->RlStep(&ctx, req, &m);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(s.error_message().find("behaviour_logprobs[0]"), std::string::npos) << s.error_message();
  }

  // export_dir: someone else's directory, the learner's own work dir and a link to them are refused and
  // left as they were; a new directory is created, marked, and may be replaced later.
  fs::create_directories(w.dir + "/foreign");
  std::ofstream(w.dir + "/foreign/job-20260101-000000-abcdef.json") << "{}";
  fs::create_directory_symlink(w.dir + "/foreign", w.dir + "/link");
  auto save = [&](const std::string& export_dir) {
    v1::SaveCheckpointRequest req;
    req.set_export_dir(export_dir);
    grpc::ClientContext ctx;
    rpc::PrepareContext(ctx, Client(learner.port));
    v1::SaveCheckpointResponse resp;
    return learner.stub->SaveCheckpoint(&ctx, req, &resp);
  };
  for (const std::string& theirs : {w.dir + "/foreign", w.work_dir, w.dir + "/link", w.dir + "/foreign/"}) {
    const grpc::Status s = save(theirs);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << theirs << ": " << s.error_message();
  }
  // Outside every root; named per process so that a directory left by an older run cannot fail this one.
  const std::string outside = "/var/tmp/r1r-outside-export-" + std::to_string(getpid());
  EXPECT_EQ(save(outside).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(save(w.dir + "/../../../../../../var/tmp/x").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(fs::exists(w.dir + "/foreign/job-20260101-000000-abcdef.json"));
  EXPECT_TRUE(fs::is_symlink(w.dir + "/link"));
  EXPECT_TRUE(fs::exists(w.work_dir + "/model/tokenizer.json"));
  EXPECT_FALSE(fs::exists(outside));
  ASSERT_TRUE(save(w.dir + "/published").ok());
  EXPECT_TRUE(fs::exists(w.dir + "/published/.r1r-owned"));
  EXPECT_TRUE(fs::exists(w.dir + "/published/config.json"));
  const grpc::Status again = save(w.dir + "/published");  // its own: replaced
  EXPECT_TRUE(again.ok()) << again.error_message();
  EXPECT_TRUE(fs::exists(w.dir + "/published/.r1r-owned"));
}

TEST(loop, LearnerAndActorValidateRequests) {
  World w = MakeWorld("validate");
  Process learner_proc = Start("learner", w.dir);
  Process actor_proc = Start("actor", w.dir);
  Learner learner{Connect<v1::Learner::Stub>(learner_proc.port()), learner_proc.port()};
  Actor actor{Connect<v1::RolloutActor::Stub>(actor_proc.port()), actor_proc.port()};
  v1::LearnerState state;
  grpc::Status s = learner.Init(w, "warmup", false, &state);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("phase"), std::string::npos) << s.error_message();
  {
    v1::StepMetrics m;
    EXPECT_EQ(learner.Sft(w, &m).error_code(), grpc::StatusCode::FAILED_PRECONDITION);  // no Init yet
  }
  {
    v1::InitRequest req;
    req.set_job_id("j");
    req.set_work_dir(w.work_dir);
    req.set_phase("sft");
    req.set_spec_yaml("name: x\nmodel: {init: tiny, dtype: float64}\ndata: {source: synthetic, synthetic_n: 4}\n");
    grpc::ClientContext ctx;
    rpc::PrepareContext(ctx, Client(learner.port));
    s = learner.stub->Init(&ctx, req, &state);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(s.error_message().find("dtype"), std::string::npos) << s.error_message();
  }
  ASSERT_TRUE(learner.Init(w, "sft", false, &state).ok());
  {
    // RL with a KL penalty: the frozen reference (the weights RL starts from) is written once.
    std::string spec = kSpec;
    spec.replace(spec.find("rl: {"), 5, "rl: {kl_coef: 0.01, kl_estimator: k3, ");
    v1::InitRequest req;
    req.set_job_id("job-1");
    req.set_spec_yaml(spec);
    req.set_work_dir(w.work_dir);
    req.set_phase("rl");
    grpc::ClientContext ctx;
    rpc::PrepareContext(ctx, Client(learner.port));
    s = learner.stub->Init(&ctx, req, &state);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_TRUE(fs::exists(w.work_dir + "/reference/model.safetensors"));
    v1::StepMetrics m;
    EXPECT_EQ(learner.Sft(w, &m).error_code(), grpc::StatusCode::FAILED_PRECONDITION);  // phase is rl now
  }
  ASSERT_TRUE(learner.Init(w, "sft", false, &state).ok());
  {
    v1::SftStepRequest req;
    auto* e = req.add_examples();
    FillPreference(w.data_dir, w.items[0], e->mutable_preference());
    e->mutable_preference()->set_label(3);
    e->set_target_text("<answer>1</answer>");
    grpc::ClientContext ctx;
    rpc::PrepareContext(ctx, Client(learner.port));
    v1::StepMetrics m;
    s = learner.stub->SftStep(&ctx, req, &m);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(s.error_message().find("examples[0].preference.label"), std::string::npos) << s.error_message();
  }
  {
    // An image whose content no longer matches the sample's hash is refused, naming the field.
    v1::SftStepRequest req;
    auto* e = req.add_examples();
    FillPreference(w.data_dir, w.items[0], e->mutable_preference());
    e->mutable_preference()->mutable_sample()->set_image_sha256(std::string(64, 'a'));
    e->set_target_text("<answer>1</answer>");
    grpc::ClientContext ctx;
    rpc::PrepareContext(ctx, Client(learner.port));
    v1::StepMetrics m;
    s = learner.stub->SftStep(&ctx, req, &m);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::DATA_LOSS);
    EXPECT_NE(s.error_message().find("examples[0].preference.sample"), std::string::npos) << s.error_message();
  }
  {
    v1::StreamWeightsRequest req;
    req.set_chunk_bytes(10);
    grpc::ClientContext ctx;
    rpc::PrepareContext(ctx, Client(learner.port));
    auto reader = learner.stub->StreamWeights(&ctx, req);
    v1::WeightChunk c;
    while (reader->Read(&c)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  // No weights yet: rollouts are refused; bad sampling is named.
  std::vector<v1::Trajectory> out;
  EXPECT_EQ(actor.Generate(w, 0, &out).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  {
    v1::GenerateRolloutsRequest req;
    req.add_prompts()->set_prompt_id("a");
    req.mutable_prompts(0)->mutable_preference()->set_question("q");
    req.mutable_sampling()->set_max_new_tokens(0);
    grpc::ClientContext ctx;
    rpc::PrepareContext(ctx, Client(actor.port));
    auto reader = actor.stub->GenerateRollouts(&ctx, req);
    v1::Trajectory t;
    while (reader->Read(&t)) {
    }
    s = reader->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(s.error_message().find("sampling.max_new_tokens"), std::string::npos) << s.error_message();
  }
  v1::LoadWeightsResponse r;
  EXPECT_EQ(actor.Load(learner.port, 0, "", &r).error_code(), grpc::StatusCode::INVALID_ARGUMENT);  // first load
  EXPECT_EQ(actor.Version(), -1);
}

}  // namespace
}  // namespace r1r::testing

namespace r1r::testing {
namespace {

// CRC32C and byte count of a learner's whole weight stream (identical weights give identical values).
std::pair<uint32_t, int64_t> WeightsFingerprint(Learner& learner) {
  v1::StreamWeightsRequest req;
  grpc::ClientContext ctx;
  rpc::PrepareContext(ctx, Client(learner.port));
  auto reader = learner.stub->StreamWeights(&ctx, req);
  v1::WeightChunk c;
  std::pair<uint32_t, int64_t> out{0, -1};
  while (reader->Read(&c)) {
    if (c.end_of_stream()) out = {c.crc32c(), c.total_bytes()};
  }
  EXPECT_TRUE(reader->Finish().ok());
  return out;
}

TEST(loop, LearnerInitsFromAPublishedModelDirectory) {
  World w = MakeWorld("model_path");
  Process first_proc = Start("learner", w.dir);
  Learner first{Connect<v1::Learner::Stub>(first_proc.port()), first_proc.port()};
  v1::LearnerState state;
  ASSERT_TRUE(first.Init(w, "sft", false, &state).ok());
  v1::StepMetrics m;
  ASSERT_TRUE(first.Sft(w, &m).ok());
  v1::SaveCheckpointRequest save;
  save.set_export_dir(w.dir + "/published");
  v1::SaveCheckpointResponse saved;
  {
    grpc::ClientContext ctx;
    rpc::PrepareContext(ctx, Client(first.port));
    ASSERT_TRUE(first.stub->SaveCheckpoint(&ctx, save, &saved).ok());
  }
  // A second job starts from the published directory (model.init: path) in its own work dir.
  std::string spec = kSpec;
  spec.replace(spec.find("init: tiny"), 10, "init: path\n  path: " + w.dir + "/published");
  Process second_proc = Start("learner", w.dir);
  Learner second{Connect<v1::Learner::Stub>(second_proc.port()), second_proc.port()};
  v1::InitRequest req;
  req.set_job_id("job-2");
  req.set_spec_yaml(spec);
  req.set_work_dir(w.dir + "/work2");
  req.set_phase("rl");
  {
    grpc::ClientContext ctx;
    rpc::PrepareContext(ctx, Client(second.port));
    grpc::Status s = second.stub->Init(&ctx, req, &state);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  EXPECT_EQ(state.policy_version(), 0);
  EXPECT_TRUE(fs::exists(w.dir + "/work2/model/config.json"));
  EXPECT_TRUE(fs::is_symlink(w.dir + "/work2/model/model.safetensors"));
  const auto a = WeightsFingerprint(first);
  const auto b = WeightsFingerprint(second);
  EXPECT_GT(a.second, 0);
  EXPECT_EQ(a, b);
  // A missing model.path is named.
  spec = kSpec;
  spec.replace(spec.find("init: tiny"), 10, "init: path\n  path: " + w.dir + "/nowhere");
  req.set_spec_yaml(spec);
  req.set_work_dir(w.dir + "/work3");
  grpc::ClientContext ctx;
  rpc::PrepareContext(ctx, Client(second.port));
  grpc::Status s = second.stub->Init(&ctx, req, &state);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("model.path"), std::string::npos) << s.error_message();
}

// Two learner ranks (Gloo over loopback), rank 1 logging under w.dir/rank1. Rank 0 is ready only once
// rank 1 has joined, so they start together.
std::pair<Process, Process> StartTwoRanks(const World& w, int timeout_seconds = 60) {
  fs::create_directories(w.dir + "/rank1");
  const int master_port = [] {  // a free loopback port for rank 0's rendezvous store
    Process probe = Start("learner", ::testing::TempDir());
    const int port = probe.port();
    probe.Signal(SIGKILL);
    probe.Wait(absl::Seconds(10));
    return port;
  }();
  auto rank_args = [&](int rank) {
    return std::vector<std::string>{"--dist-world-size", "2", "--dist-rank", std::to_string(rank), "--dist-master",
                                    "127.0.0.1:" + std::to_string(master_port), "--dist-timeout-seconds",
                                    std::to_string(timeout_seconds)};
  };
  Process rank1;
  std::thread start_rank1([&] { rank1 = Start("learner", w.dir + "/rank1", rank_args(1)); });
  Process rank0 = Start("learner", w.dir, rank_args(0));
  start_rank1.join();
  return {std::move(rank0), std::move(rank1)};
}

// Two learner ranks (Gloo over loopback) against one learner alone, on the same SFT batch and the same
// rollouts: rank 0 answers with the lone learner's losses, rank 1 follows and holds the same weights as
// rank 0, rank 1 refuses training calls, and stopping rank 0 stops rank 1.
TEST(loop, LearnerRanksTrainAsOneLearner) {
  World w = MakeWorld("ranks");
  World alone_world = w;
  alone_world.work_dir = w.dir + "/alone";
  fs::create_directories(alone_world.work_dir + "/model");
  fs::copy_file(w.work_dir + "/model/tokenizer.json", alone_world.work_dir + "/model/tokenizer.json");
  auto [rank0_proc, rank1_proc] = StartTwoRanks(w);
  ASSERT_GT(rank0_proc.port(), 0);
  ASSERT_GT(rank1_proc.port(), 0);
  Process alone_proc = Start("learner", alone_world.dir + "/alone");
  Process actor_proc = Start("actor", w.dir, {"--actor-id", "actor-r"});
  Learner rank0{Connect<v1::Learner::Stub>(rank0_proc.port()), rank0_proc.port()};
  Learner rank1{Connect<v1::Learner::Stub>(rank1_proc.port()), rank1_proc.port()};
  Learner alone{Connect<v1::Learner::Stub>(alone_proc.port()), alone_proc.port()};
  Actor actor{Connect<v1::RolloutActor::Stub>(actor_proc.port()), actor_proc.port()};

  v1::LearnerState state;
  ASSERT_TRUE(alone.Init(alone_world, "sft", false, &state).ok());
  grpc::Status s = rank0.Init(w, "sft", false, &state);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(rank1.Init(w, "sft", false, &state).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(WeightsFingerprint(rank0), WeightsFingerprint(alone));  // the same seeded tiny model

  auto expect_same_step = [](const v1::StepMetrics& a, const v1::StepMetrics& b) {
    EXPECT_NEAR(a.loss(), b.loss(), 1e-5 * (1 + std::abs(b.loss())));
    EXPECT_NEAR(a.grad_norm(), b.grad_norm(), 1e-5 * (1 + b.grad_norm()));
    EXPECT_EQ(a.policy_version(), b.policy_version());
  };
  v1::StepMetrics ranked, single;
  s = rank0.Sft(w, &ranked);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_TRUE(alone.Sft(alone_world, &single).ok());
  expect_same_step(ranked, single);
  ASSERT_TRUE(rank1.State(&state).ok());
  EXPECT_EQ(state.sft_steps(), 1);
  EXPECT_EQ(WeightsFingerprint(rank1), WeightsFingerprint(rank0));

  // RL on the same rollouts (made from rank 0's weights, which any rank may stream).
  v1::LoadWeightsResponse loaded;
  ASSERT_TRUE(actor.Load(rank1.port, 0, w.work_dir + "/model", &loaded).ok());
  std::vector<v1::Trajectory> rollouts;
  ASSERT_TRUE(actor.Generate(w, 0, &rollouts).ok());
  v1::ExperienceBatch batch;
  const float rewards[] = {2.0f, 0.0f, 1.0f, -0.5f};
  for (size_t i = 0; i < rollouts.size(); ++i) {
    *batch.add_trajectories() = rollouts[i];
    auto* r = batch.add_rewards();
    r->set_prompt_id(rollouts[i].prompt_id());
    r->set_total(rewards[i % 4]);
  }
  ASSERT_TRUE(alone.Init(alone_world, "rl", false, &state).ok());
  ASSERT_TRUE(rank0.Init(w, "rl", false, &state).ok());
  for (Learner* learner : {&rank0, &alone}) {
    grpc::ClientContext ctx;
    rpc::PrepareContext(ctx, Client(learner->port));
    s = learner->stub->RlStep(&ctx, batch, learner == &rank0 ? &ranked : &single);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  expect_same_step(ranked, single);
  EXPECT_EQ(ranked.policy_version(), 1);
  ASSERT_TRUE(rank1.State(&state).ok());
  EXPECT_EQ(state.rl_steps(), 1);
  EXPECT_EQ(state.policy_version(), 1);
  EXPECT_EQ(WeightsFingerprint(rank1), WeightsFingerprint(rank0));

  // Stopping rank 0 stops rank 1 cleanly.
  rank0_proc.Signal(SIGTERM);
  EXPECT_EQ(rank0_proc.Wait(absl::Seconds(30)), 0);
  EXPECT_EQ(rank1_proc.Wait(absl::Seconds(30)), 0);
}

// ZeRO-2 across two learner ranks: SaveCheckpoint makes every rank write its optimizer shard, and a
// single learner resumes from them (re-sharded) taking the two ranks' next steps.
TEST(loop, ZeroTwoLearnerRanksCheckpointShardsAndResumeOnOneRank) {
  World w = MakeWorld("zero2");
  const std::string spec = std::string(kSpec) + "learner: {precision: fp32, zero_stage: 2}\n";
  auto [rank0_proc, rank1_proc] = StartTwoRanks(w);
  ASSERT_GT(rank0_proc.port(), 0);
  ASSERT_GT(rank1_proc.port(), 0);
  Learner rank0{Connect<v1::Learner::Stub>(rank0_proc.port()), rank0_proc.port()};
  v1::LearnerState state;
  grpc::Status s = rank0.Init(w, "sft", false, &state, spec);
  ASSERT_TRUE(s.ok()) << s.error_message();
  v1::StepMetrics m;
  for (int i = 0; i < 2; ++i) {
    s = rank0.Sft(w, &m);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  v1::SaveCheckpointResponse saved;
  {
    v1::SaveCheckpointRequest req;
    grpc::ClientContext ctx;
    rpc::PrepareContext(ctx, Client(rank0.port));
    s = rank0.stub->SaveCheckpoint(&ctx, req, &saved);
  }
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(fs::exists(saved.path() + "/optimizer/shard-0-of-2.pt")) << saved.path();
  EXPECT_TRUE(fs::exists(saved.path() + "/optimizer/shard-1-of-2.pt"));
  EXPECT_TRUE(fs::exists(saved.path() + "/optimizer/layout.json"));
  std::vector<v1::StepMetrics> ranked(2);
  for (auto& r : ranked) ASSERT_TRUE(rank0.Sft(w, &r).ok());
  rank0_proc.Signal(SIGTERM);
  EXPECT_EQ(rank0_proc.Wait(absl::Seconds(30)), 0);
  EXPECT_EQ(rank1_proc.Wait(absl::Seconds(30)), 0);

  Process alone_proc = Start("learner", w.dir);
  Learner alone{Connect<v1::Learner::Stub>(alone_proc.port()), alone_proc.port()};
  s = alone.Init(w, "sft", true, &state, spec);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(state.sft_steps(), 2);
  for (const auto& r : ranked) {
    v1::StepMetrics single;
    ASSERT_TRUE(alone.Sft(w, &single).ok());
    // The second step's loss depends on the first step's update, i.e. on the restored moments.
    EXPECT_NEAR(single.loss(), r.loss(), 1e-5 * (1 + std::abs(r.loss())));
    EXPECT_NEAR(single.grad_norm(), r.grad_norm(), 1e-4 * (1 + r.grad_norm()));
  }
}

}  // namespace
}  // namespace r1r::testing

namespace r1r::testing {
namespace {

// Rank 1 waits for rank 0's next command inside a collective with the group's timeout (6 s here): idle
// for longer than that, the ranks stay together because rank 0 sends a heartbeat, and train after it.
TEST(loop, IdleLearnerRanksOutliveTheCollectiveTimeout) {
  World w = MakeWorld("idle-ranks");
  auto [rank0_proc, rank1_proc] = StartTwoRanks(w, 6);
  ASSERT_GT(rank0_proc.port(), 0);
  ASSERT_GT(rank1_proc.port(), 0);
  absl::SleepFor(absl::Seconds(15));
  Learner rank0{Connect<v1::Learner::Stub>(rank0_proc.port()), rank0_proc.port()};
  Learner rank1{Connect<v1::Learner::Stub>(rank1_proc.port()), rank1_proc.port()};
  v1::LearnerState state;
  grpc::Status s = rank0.Init(w, "sft", false, &state);
  ASSERT_TRUE(s.ok()) << s.error_message();
  v1::StepMetrics m;
  s = rank0.Sft(w, &m);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_TRUE(rank1.State(&state).ok());
  EXPECT_EQ(state.sft_steps(), 1);
  rank0_proc.Signal(SIGTERM);
  EXPECT_EQ(rank0_proc.Wait(absl::Seconds(30)), 0);
  EXPECT_EQ(rank1_proc.Wait(absl::Seconds(30)), 0);
}

// A rank that dies breaks the group for good: rank 0 fails the next training call as UNAVAILABLE and
// stops with a non-zero code, so that a supervisor (Kubernetes, compose) restarts all ranks together.
TEST(loop, LosingALearnerRankStopsRankZero) {
  World w = MakeWorld("lost-rank");
  auto [rank0_proc, rank1_proc] = StartTwoRanks(w);
  ASSERT_GT(rank0_proc.port(), 0);
  ASSERT_GT(rank1_proc.port(), 0);
  Learner rank0{Connect<v1::Learner::Stub>(rank0_proc.port()), rank0_proc.port()};
  v1::LearnerState state;
  grpc::Status s = rank0.Init(w, "sft", false, &state);
  ASSERT_TRUE(s.ok()) << s.error_message();

  rank1_proc.Signal(SIGKILL);
  rank1_proc.Wait(absl::Seconds(10));
  v1::StepMetrics m;
  s = rank0.Sft(w, &m);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_EQ(rank0_proc.Wait(absl::Seconds(60)), 1);
}

}  // namespace
}  // namespace r1r::testing
