// The actor's handlers called directly (no network): request checks name the field, calls out of
// order are preconditions, weight pulls go only to allowed learners and model directories under the
// read roots, and the per-prompt sampling seeds keep their numbers.
#include "services/actor/actor_service.h"

#include <unistd.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include "common/reward/answer_order.h"
#include "services/actor/actor_requests.h"
#include "services/actor/weight_receiver.h"

namespace r1r::actor {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<ActorServiceImpl> Actor() {
  ActorOptions o;
  o.learner_targets = {"127.0.0.1:*", "learner-0:50052"};
  o.read_roots = *files::Roots::Make({{"data-root", ::testing::TempDir()}});
  return std::make_unique<ActorServiceImpl>(o, nullptr);
}

v1::GenerateRolloutsRequest Request(int prompts) {
  v1::GenerateRolloutsRequest req;
  for (int i = 0; i < prompts; ++i) {
    auto* p = req.add_prompts();
    p->set_prompt_id("p" + std::to_string(i));
    p->mutable_preference()->set_question("How many red circles?");
  }
  req.mutable_sampling()->set_temperature(1.0f);
  req.mutable_sampling()->set_max_new_tokens(8);
  return req;
}

// The handler's reply; the request checks run before anything is written, so no writer is needed.
grpc::Status Generate(ActorServiceImpl& actor, const v1::GenerateRolloutsRequest& req) {
  grpc::ServerContext ctx;
  return actor.GenerateRollouts(&ctx, &req, nullptr);
}

TEST(actor, BadRolloutRequestsAreInvalidArgumentsNamingTheField) {
  auto actor = Actor();
  struct Case {
    const char* what;
    std::function<void(v1::GenerateRolloutsRequest&)> spoil;
    const char* field;
  };
  const Case cases[] = {
      {"no prompts", [](auto& r) { r.clear_prompts(); }, "prompts: need 1..1024, got 0"},
      {"NaN temperature", [](auto& r) { r.mutable_sampling()->set_temperature(std::nanf("")); },
       "sampling.temperature"},
      {"top_p over 1", [](auto& r) { r.mutable_sampling()->set_top_p(1.5f); }, "sampling.top_p"},
      {"no tokens", [](auto& r) { r.mutable_sampling()->set_max_new_tokens(0); }, "sampling.max_new_tokens"},
      {"duplicate id", [](auto& r) { r.mutable_prompts(1)->set_prompt_id("p0"); }, "prompts[1].prompt_id: duplicate"},
      {"oversized question",
       [](auto& r) { r.mutable_prompts(0)->mutable_preference()->set_question(std::string((64 << 10) + 1, 'q')); },
       "prompts[0].preference: question and responses must be <= 64 KiB"},
      {"bad sha", [](auto& r) { r.mutable_prompts(0)->mutable_preference()->mutable_sample()->set_image_sha256("xyz"); },
       "prompts[0].preference.sample.image_sha256"},
      {"nothing to encode", [](auto& r) { r.mutable_prompts(0)->mutable_preference()->clear_question(); },
       "prompts[0]: needs prompt_token_ids or preference.question"},
  };
  for (const Case& c : cases) {
    v1::GenerateRolloutsRequest req = Request(2);
    c.spoil(req);
    const grpc::Status s = Generate(*actor, req);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.what;
    EXPECT_THAT(s.error_message(), HasSubstr(c.field)) << c.what;
  }
}

TEST(actor, RolloutsBeforeAnyWeightsAreAPreconditionFailure) {
  auto actor = Actor();
  const grpc::Status s = Generate(*actor, Request(1));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("call LoadWeights"));
  grpc::ServerContext ctx;
  v1::ActorInfoRequest info_req;
  v1::ActorInfo info;
  ASSERT_TRUE(actor->GetInfo(&ctx, &info_req, &info).ok());
  EXPECT_EQ(info.policy_version(), -1);
  EXPECT_EQ(info.parameters(), 0);
}

TEST(actor, WeightPullsGoOnlyToAllowedLearnersAndModelDirsUnderTheRoots) {
  auto actor = Actor();
  grpc::ServerContext ctx;
  v1::LoadWeightsResponse resp;
  v1::LoadWeightsRequest req;
  req.set_learner_target("evil.example:50052");
  grpc::Status s = actor->LoadWeights(&ctx, &req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("learner_target: 'evil.example:50052'"));
  req.set_learner_target("");
  EXPECT_EQ(actor->LoadWeights(&ctx, &req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  req.set_learner_target("learner-0:50052");
  req.set_version(-1);
  s = actor->LoadWeights(&ctx, &req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("version"));
  req.set_version(0);
  req.set_model_dir("/proc/self");
  s = actor->LoadWeights(&ctx, &req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("model_dir"));
}

TEST(actor, AllowedTargetsMatchExactlyOrByHostWithAnyPort) {
  const std::vector<std::string> allowed = {"127.0.0.1:*", "learner-0:50052"};
  EXPECT_TRUE(IsAllowedTarget("127.0.0.1:9", allowed));
  EXPECT_TRUE(IsAllowedTarget("learner-0:50052", allowed));
  EXPECT_FALSE(IsAllowedTarget("learner-0:50053", allowed));
  EXPECT_FALSE(IsAllowedTarget("127.0.0.10:9", allowed));
  EXPECT_FALSE(IsAllowedTarget("127.0.0.1", allowed));
}

TEST(actor, PromptSeedsKeepTheirNumbers) {
  // A request seed: SplitMix64(seed + index), which reward::Mix64 is, bit for bit. The value is the
  // one the actor's own copy gave before it used reward::Mix64.
  EXPECT_EQ(PromptSeed(1000, 0, "x"), reward::Mix64(1000));
  EXPECT_EQ(PromptSeed(1000, 3, "x"), reward::Mix64(1003));
  EXPECT_EQ(reward::Mix64(0), 0xE220A8397B1DCDAFull);
  // Seed 0: tied to the prompt id, the same on any actor, different across ids, never 0.
  EXPECT_EQ(PromptSeed(0, 0, "prompt-a"), PromptSeed(0, 7, "prompt-a"));
  EXPECT_NE(PromptSeed(0, 0, "prompt-a"), PromptSeed(0, 0, "prompt-b"));
  EXPECT_NE(PromptSeed(0, 0, "a"), PromptSeed(0, 0, std::string("a\0", 2)));
  EXPECT_NE(PromptSeed(0, 0, ""), 0u);
}

TEST(actor, SamplingForMapsTheWireDefaults) {
  v1::SamplingParams sp;
  sp.set_temperature(0.5f);
  sp.set_top_p(0);  // 0 on the wire means no nucleus cut
  sp.set_top_k(-3);
  sp.set_max_new_tokens(12);
  sp.set_seed(9);
  sp.add_stop_token_ids(4);
  const model::SamplingParams s = SamplingFor(sp, 2, "p");
  EXPECT_DOUBLE_EQ(s.temperature, 0.5);
  EXPECT_DOUBLE_EQ(s.top_p, 1.0);
  EXPECT_EQ(s.top_k, 0);
  EXPECT_EQ(s.max_new_tokens, 12);
  EXPECT_EQ(s.seed, reward::Mix64(11));
  EXPECT_EQ(s.stop_token_ids, (std::vector<int64_t>{4}));
}

// The sync-group flags (read by dist::SyncGroupOptionsFromFlags for the learner too): off without a
// store, every value reaches the options, and a bad value's error names its flag.
TEST(actor, WeightSyncFlagsReachTheOptionsOrNameTheBadFlag) {
  auto parse = [](std::vector<const char*> args) {
    config::Flags f;
    f.Value("weight-sync-store", "", "").Value("weight-sync-backend", "gloo", "")
        .Value("weight-sync-bucket-mb", "64", "").Value("weight-sync-group-timeout-seconds", "30", "")
        .Value("weight-sync-wait-seconds", "60", "");
    args.insert(args.begin(), "actor");
    EXPECT_TRUE(f.Parse(static_cast<int>(args.size()), args.data()).ok());
    return ParseWeightSyncFlags(f, "cpu");
  };
  auto off = parse({});
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_FALSE(off->has_value());
  auto on = parse({"--weight-sync-store", "learner:29600", "--weight-sync-bucket-mb", "8",
                   "--weight-sync-group-timeout-seconds", "5", "--weight-sync-wait-seconds", "7"});
  ASSERT_TRUE(on.ok()) << on.status();
  ASSERT_TRUE(on->has_value());
  EXPECT_EQ((*on)->group.bucket_bytes, int64_t{8} << 20);
  EXPECT_EQ((*on)->group.timeout, std::chrono::seconds(5));
  EXPECT_EQ((*on)->wait, std::chrono::seconds(7));
  for (const auto& [flag, value] : std::vector<std::pair<const char*, const char*>>{
           {"--weight-sync-bucket-mb", "0"}, {"--weight-sync-backend", "mpi"},
           {"--weight-sync-group-timeout-seconds", "0"}, {"--weight-sync-wait-seconds", "9999"}}) {
    SCOPED_TRACE(flag);
    auto bad = parse({"--weight-sync-store", "learner:29600", flag, value});
    ASSERT_FALSE(bad.ok());
    EXPECT_THAT(std::string(bad.status().message()), HasSubstr(flag));
  }
  EXPECT_THAT(std::string(parse({"--weight-sync-store", "no-port"}).status().message()),
              HasSubstr("--weight-sync-store"));
}

TEST(actor, EverySeriesExistsFromStartUp) {
  obs::Metrics metrics("actor");
  ActorServiceImpl actor(ActorOptions{}, &metrics);
  const std::string text = prometheus::TextSerializer().Serialize(metrics.registry().Collect());
  for (const char* series : {"r1r_actor_policy_version{service=\"actor\"} -1", "r1r_actor_rollout_seconds_count",
                             "r1r_actor_weight_sync_seconds_count", "r1r_actor_tokens_per_second",
                             "r1r_actor_trajectories_total", "r1r_actor_weight_sync_failures_total"}) {
    EXPECT_THAT(text, HasSubstr(series)) << series;
  }
}

}  // namespace
}  // namespace r1r::actor
