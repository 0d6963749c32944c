// The learner's handlers called directly, on a tiny model made in the test (no network): calls out
// of order, requests that are too large, not finite or out of range, images outside the data root,
// and a good SFT step that moves the learner on and is saved in state.json.
#include "services/learner/learner_service.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include "common/files/remove_tree.h"
#include "common/train/checkpoint_state.h"
#include "tests/support/tiny_model_dir.h"

namespace r1r::learner {
namespace {

using ::testing::HasSubstr;

constexpr char kSpec[] =
    "name: t\nmodel: {init: tiny, dtype: float32, device: cpu}\ndata: {source: synthetic, synthetic_n: 8}\nsft: {max_response_tokens: 64}\n";

// One work directory per test process, with the tiny model in work/model and its dataset in work/data.
struct World {
  std::string root;
  test_support::TinyModelDir tiny;
  World() : root(::testing::TempDir() + "/learner_service_test_" + std::to_string(::getpid())) {
    EXPECT_TRUE(files::RemoveTree(root).ok()) << root;
    auto made = test_support::MakeTinyModelDir(root + "/work");
    EXPECT_TRUE(made.ok()) << made.status();
    if (made.ok()) tiny = *made;
    std::ofstream(root + "/outside.png") << "not under the data root";
  }
  ~World() { files::RemoveTree(root).IgnoreError(); }
};

const World& TheWorld() {
  static World world;
  return world;
}

std::unique_ptr<LearnerServiceImpl> Learner() {
  const World& w = TheWorld();
  LearnerOptions o;
  o.micro_batch = 4;
  o.work_roots = *files::Roots::Make({{"work-root", w.root + "/work"}});
  o.export_roots = o.work_roots;
  o.read_roots = *files::Roots::Make({{"data-root", w.tiny.data_dir}, {"work-root", w.root + "/work"}});
  return std::make_unique<LearnerServiceImpl>(o, nullptr);
}

v1::InitRequest InitFor(const std::string& phase) {
  v1::InitRequest req;
  req.set_job_id("job");
  req.set_spec_yaml(kSpec);
  req.set_work_dir(TheWorld().root + "/work");
  req.set_phase(phase);
  req.set_total_steps(4);
  return req;
}

// Example i of the synthetic dataset, with its image and teacher trace.
v1::SftExample Example(int i) {
  const auto& s = TheWorld().tiny.items.at(static_cast<size_t>(i)).sample;
  v1::SftExample e;
  auto* p = e.mutable_preference();
  p->mutable_sample()->set_dataset(TheWorld().tiny.data_dir);
  p->mutable_sample()->set_image_path(s.image_path);
  p->set_question(s.question);
  p->set_response1(s.response1);
  p->set_response2(s.response2);
  p->set_label(s.label);
  e.set_target_text(s.reasoning.value_or("<think>x</think><answer>1</answer>"));
  return e;
}

v1::ExperienceBatch Rollout(int32_t prompt_id, int64_t version) {
  v1::ExperienceBatch b;
  auto* t = b.add_trajectories();
  t->set_prompt_id("p0");
  t->add_prompt_token_ids(prompt_id);
  t->add_response_token_ids(1);
  t->set_policy_version(version);
  auto* r = b.add_rewards();
  r->set_prompt_id("p0");
  r->set_total(1.0f);
  return b;
}

std::string Message(const grpc::Status& s) { return s.error_message(); }

TEST(learner, TrainingCallsBeforeInitAreFailedPrecondition) {
  auto learner = Learner();
  grpc::ServerContext ctx;
  v1::StepMetrics metrics;
  v1::SftStepRequest sft;
  *sft.add_examples() = Example(0);
  grpc::Status s = learner->SftStep(&ctx, &sft, &metrics);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(Message(s), HasSubstr("call Init first"));
  const v1::ExperienceBatch rollout = Rollout(1, 0);
  s = learner->RlStep(&ctx, &rollout, &metrics);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  v1::SaveCheckpointRequest save;
  v1::SaveCheckpointResponse saved;
  EXPECT_EQ(learner->SaveCheckpoint(&ctx, &save, &saved).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  v1::StreamWeightsRequest stream;
  EXPECT_EQ(learner->StreamWeights(&ctx, &stream, nullptr).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

TEST(learner, BadRequestsAreInvalidArgumentsNamingTheField) {
  auto learner = Learner();
  grpc::ServerContext ctx;
  v1::StepMetrics metrics;
  v1::LearnerState state;
  v1::InitRequest init = InitFor("dpo");
  grpc::Status s = learner->Init(&ctx, &init, &state);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(Message(s), HasSubstr("phase"));

  v1::SftStepRequest big;
  *big.add_examples() = Example(0);
  big.mutable_examples(0)->mutable_preference()->set_question(std::string((64 << 10) + 1, 'q'));
  s = learner->SftStep(&ctx, &big, &metrics);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(Message(s), HasSubstr("examples[0].preference.question: over 64 KiB"));

  v1::SftStepRequest no_label;
  *no_label.add_examples() = Example(0);
  no_label.mutable_examples(0)->mutable_preference()->set_label(3);
  EXPECT_THAT(Message(learner->SftStep(&ctx, &no_label, &metrics)), HasSubstr("examples[0].preference.label"));

  v1::ExperienceBatch nan_logprob = Rollout(1, 0);
  nan_logprob.mutable_trajectories(0)->add_behaviour_logprobs(std::nanf(""));
  s = learner->RlStep(&ctx, &nan_logprob, &metrics);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(Message(s), HasSubstr("trajectories[0].behaviour_logprobs[0]"));

  v1::ExperienceBatch nan_reward = Rollout(1, 0);
  nan_reward.mutable_rewards(0)->set_total(std::nanf(""));
  EXPECT_THAT(Message(learner->RlStep(&ctx, &nan_reward, &metrics)), HasSubstr("rewards[0].total: not finite"));

  v1::StreamWeightsRequest tiny_chunks;
  tiny_chunks.set_chunk_bytes(1000);
  s = learner->StreamWeights(&ctx, &tiny_chunks, nullptr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(Message(s), HasSubstr("chunk_bytes"));
}

TEST(learner, TokenIdOutOfRangeIsInvalidNamingTheField) {
  auto learner = Learner();
  grpc::ServerContext ctx;
  v1::LearnerState state;
  v1::InitRequest init = InitFor("rl");
  const grpc::Status initialised = learner->Init(&ctx, &init, &state);
  ASSERT_TRUE(initialised.ok()) << initialised.error_code() << ": " << initialised.error_message();
  v1::StepMetrics metrics;
  v1::ExperienceBatch bad = Rollout(1 << 30, 0);
  grpc::Status s = learner->RlStep(&ctx, &bad, &metrics);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(Message(s), HasSubstr("trajectories[0].prompt_token_ids: id 1073741824 out of range"));
  v1::ExperienceBatch stale = Rollout(1, 5);  // a version the learner never had
  s = learner->RlStep(&ctx, &stale, &metrics);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(Message(s), HasSubstr("trajectories[0].policy_version: 5"));
}

TEST(learner, ImageOutsideTheDataRootIsRefused) {
  auto learner = Learner();
  grpc::ServerContext ctx;
  v1::LearnerState state;
  v1::InitRequest init = InitFor("sft");
  const grpc::Status initialised = learner->Init(&ctx, &init, &state);
  ASSERT_TRUE(initialised.ok()) << initialised.error_code() << ": " << initialised.error_message();
  v1::StepMetrics metrics;
  v1::SftStepRequest req;
  *req.add_examples() = Example(0);
  req.mutable_examples(0)->mutable_preference()->mutable_sample()->set_image_path(TheWorld().root + "/outside.png");
  grpc::Status s = learner->SftStep(&ctx, &req, &metrics);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(Message(s), HasSubstr("examples[0].preference.sample.image_path"));
  v1::GetStateRequest get;
  ASSERT_TRUE(learner->GetState(&ctx, &get, &state).ok());
  EXPECT_EQ(state.sft_steps(), 0);  // nothing was trained
}

TEST(learner, GoodSftStepMovesTheLearnerOnAndIsSavedInStateJson) {
  auto learner = Learner();
  grpc::ServerContext ctx;
  v1::LearnerState state;
  v1::InitRequest init = InitFor("sft");
  const grpc::Status initialised = learner->Init(&ctx, &init, &state);
  ASSERT_TRUE(initialised.ok()) << initialised.error_code() << ": " << initialised.error_message();
  EXPECT_EQ(state.sft_steps(), 0);
  v1::SftStepRequest req;
  *req.add_examples() = Example(0);
  *req.add_examples() = Example(1);
  v1::StepMetrics metrics;
  grpc::Status s = learner->SftStep(&ctx, &req, &metrics);
  ASSERT_TRUE(s.ok()) << Message(s);
  EXPECT_TRUE(std::isfinite(metrics.loss()));
  EXPECT_GT(metrics.loss(), 0);
  EXPECT_FALSE(metrics.skipped());
  v1::GetStateRequest get;
  ASSERT_TRUE(learner->GetState(&ctx, &get, &state).ok());
  EXPECT_EQ(state.sft_steps(), 1);
  EXPECT_EQ(state.phase(), "sft");

  v1::SaveCheckpointRequest save;
  save.set_data_cursor(2);
  v1::SaveCheckpointResponse saved;
  s = learner->SaveCheckpoint(&ctx, &save, &saved);
  ASSERT_TRUE(s.ok()) << Message(s);
  auto written = train::CheckpointState::Read(saved.path());
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(written->job_id, "job");
  EXPECT_EQ(written->sft_steps, 1);
  EXPECT_EQ(written->data_cursor, 2);
  EXPECT_EQ(written->optimizer_steps, 1);
}

TEST(learner, EverySeriesExistsFromStartUp) {
  // A short job's dashboards need a sample before the first event: counters, gauges and histograms
  // are created when the service is, not at their first use.
  obs::Metrics metrics("learner");
  const World& w = TheWorld();
  LearnerOptions o;
  o.work_roots = *files::Roots::Make({{"work-root", w.root + "/work"}});
  LearnerServiceImpl learner(o, &metrics);
  const std::string text = prometheus::TextSerializer().Serialize(metrics.registry().Collect());
  for (const char* series : {"r1r_learner_steps_total{phase=\"sft\"", "r1r_learner_steps_total{phase=\"rl\"",
                             "r1r_learner_optimizer_steps_total{phase=\"rl\"", "r1r_learner_policy_version",
                             "r1r_learner_truncated_targets_total", "r1r_learner_stale_trajectories_total",
                             "r1r_learner_weight_sync_bytes_total", "r1r_learner_weight_sync_seconds_count",
                             "r1r_learner_checkpoints_pruned_total", "r1r_rl_clip_fraction", "r1r_rl_approx_kl",
                             "r1r_learner_step_part_seconds_count{part=\"forward\",phase=\"rl\""}) {
    EXPECT_THAT(text, HasSubstr(series)) << series;
  }
  // KL(policy || reference) exists only once a reference model gives a value (rl.kl_coef > 0): a 0
  // from start-up would read as a measured KL of zero on the dashboard.
  EXPECT_THAT(text, ::testing::Not(HasSubstr("r1r_rl_kl ")));
}

}  // namespace
}  // namespace r1r::learner
