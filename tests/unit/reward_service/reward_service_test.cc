// The reward aggregator's handler called directly: validation names the field, the R1-Reward total
// comes out per trajectory, and a judge that cannot be reached fails the request (never a silent score).
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/metric_family.h>

#include "common/judge/referee_backend.h"
#include "common/obs/metrics.h"
#include "common/rpc/server.h"
#include "services/judge/judge_service.h"
#include "services/reward/reward_service.h"

namespace r1r::reward {
namespace {

using ::testing::HasSubstr;

constexpr char kConsistentRight[] =
    "<think>Response 1 names the right count.\nSo response 1 is better.</think><answer>1</answer>";
constexpr char kInconsistentRight[] =
    "<think>Response 1 miscounts.\nTherefore response 2 is better.</think><answer>1</answer>";

std::unique_ptr<RewardServiceImpl> MakeService(obs::Metrics& metrics, const std::string& judge_target) {
  JudgeClientOptions o;
  o.client.target = judge_target;
  o.client.timeout = absl::Seconds(10);
  o.retry.max_attempts = 1;  // an unreachable judge fails at once
  auto channel = rpc::MakeChannel(o.client);
  EXPECT_TRUE(channel.ok()) << channel.status();
  return std::make_unique<RewardServiceImpl>(o, *channel, &metrics);
}

v1::ScoreTrajectoriesRequest Request(const std::vector<std::string>& responses, int label = 1) {
  v1::ScoreTrajectoriesRequest r;
  for (size_t i = 0; i < responses.size(); ++i) {
    v1::Trajectory* t = r.add_trajectories();
    t->set_prompt_id("p" + std::to_string(i));
    t->mutable_preference()->set_label(label);
    t->set_response_text(responses[i]);
  }
  return r;
}

// The sum of a counter's series; -1 when no such metric is registered.
double CounterValue(obs::Metrics& m, const std::string& name) {
  for (const prometheus::MetricFamily& family : m.registry().Collect()) {
    if (family.name != name) continue;
    double sum = 0;
    for (const prometheus::ClientMetric& metric : family.metric) sum += metric.counter.value;
    return sum;
  }
  return -1;
}

bool Registered(obs::Metrics& m, const std::string& name) {
  for (const prometheus::MetricFamily& family : m.registry().Collect()) {
    if (family.name == name) return true;
  }
  return false;
}

TEST(reward_service, EveryMetricExistsAtStartUp) {
  obs::Metrics metrics("reward");
  auto service = MakeService(metrics, "127.0.0.1:1");
  for (const char* name : {"r1r_reward_trajectories_total", "r1r_reward_rejected_requests_total",
                           "r1r_reward_judge_failures_total", "r1r_reward_judge_seconds", "r1r_reward_mean",
                           "r1r_reward_format_rate", "r1r_reward_result_rate", "r1r_reward_consistency_rate"}) {
    EXPECT_TRUE(Registered(metrics, name)) << name;
  }
  EXPECT_EQ(CounterValue(metrics, "r1r_reward_trajectories_total"), 0);
}

// Validation fails before the judge is asked, so an unreachable target is fine there.
grpc::Status ScoreWithoutJudge(obs::Metrics& metrics, const v1::ScoreTrajectoriesRequest& req) {
  v1::ScoreTrajectoriesResponse resp;
  return MakeService(metrics, "127.0.0.1:1")->Score(req, &resp);
}

TEST(reward_service, EmptyBatchIsInvalidAndNamesTrajectories) {
  obs::Metrics metrics("reward");
  const grpc::Status s = ScoreWithoutJudge(metrics, v1::ScoreTrajectoriesRequest());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("trajectories: need 1..4096, got 0"));
  EXPECT_EQ(CounterValue(metrics, "r1r_reward_rejected_requests_total"), 1);
}

TEST(reward_service, InfiniteAndNaNWeightsAreInvalidAndNameTheWeights) {
  obs::Metrics metrics("reward");
  for (float bad : {std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN(), -1.0f, 1001.0f}) {
    v1::ScoreTrajectoriesRequest req = Request({kConsistentRight});
    req.mutable_weights()->set_use_explicit(true);
    req.mutable_weights()->set_format_weight(0.5f);
    req.mutable_weights()->set_consistency_weight(bad);
    const grpc::Status s = ScoreWithoutJudge(metrics, req);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
    EXPECT_THAT(s.error_message(), HasSubstr("weights: format_weight and consistency_weight must be in [0, 1000]"));
  }
  EXPECT_EQ(CounterValue(metrics, "r1r_reward_rejected_requests_total"), 4);
}

TEST(reward_service, OversizedResponseAndBadLabelNameTheTrajectory) {
  obs::Metrics metrics("reward");
  grpc::Status s = ScoreWithoutJudge(metrics, Request({"<answer>1</answer>", std::string((64 << 10) + 1, 'x')}));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("trajectories[1].response_text: over 64 KiB"));
  s = ScoreWithoutJudge(metrics, Request({"<answer>1</answer>"}, /*label=*/3));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("trajectories[0].preference.label: must be 1 or 2, got 3"));
}

TEST(reward_service, UnreachableJudgeFailsTheRequestAsUnavailableNamingTheJudge) {
  obs::Metrics metrics("reward");
  auto service = MakeService(metrics, "127.0.0.1:1");
  v1::ScoreTrajectoriesResponse resp;
  const grpc::Status s = service->Score(Request({kConsistentRight}), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(), HasSubstr("judge at 127.0.0.1:1 failed after 1 attempt(s)"));
  EXPECT_EQ(resp.rewards_size(), 0);  // nothing scored without the referee
  EXPECT_EQ(CounterValue(metrics, "r1r_reward_judge_failures_total"), 1);
  EXPECT_EQ(CounterValue(metrics, "r1r_reward_trajectories_total"), 0);
}

TEST(reward_service, SkipJudgeScoresFormatAndResultWithoutTheReferee) {
  obs::Metrics metrics("reward");
  auto service = MakeService(metrics, "127.0.0.1:1");  // never called
  v1::ScoreTrajectoriesRequest req = Request({kConsistentRight, "no tags, answer 2"});
  req.mutable_weights()->set_skip_judge(true);
  v1::ScoreTrajectoriesResponse resp;
  ASSERT_TRUE(service->Score(req, &resp).ok());
  ASSERT_EQ(resp.rewards_size(), 2);
  EXPECT_EQ(resp.rewards(0).prompt_id(), "p0");
  EXPECT_FLOAT_EQ(resp.rewards(0).total(), 1.5f);  // 0.5 * 1 + 1 * (1 + 0.5 * 0)
  EXPECT_EQ(resp.rewards(0).parsed_answer(), 1);
  EXPECT_FLOAT_EQ(resp.rewards(1).format(), 0.0f);
  EXPECT_EQ(resp.rewards(1).parsed_answer(), 0);
  EXPECT_EQ(CounterValue(metrics, "r1r_reward_trajectories_total"), 2);
}

TEST(reward_service, ConsistencyFromTheJudgeScalesTheResult) {
  rpc::ServerOptions so;
  so.service_name = "judge";
  so.listen = "127.0.0.1:0";
  rpc::Server judge_server(so);
  judge::JudgeServiceImpl judge(judge::MakeRuleBackend(), &judge_server.metrics());
  judge_server.AddService(&judge);
  ASSERT_TRUE(judge_server.Start().ok());

  obs::Metrics metrics("reward");
  auto service = MakeService(metrics, "127.0.0.1:" + std::to_string(judge_server.port()));
  v1::ScoreTrajectoriesResponse resp;
  ASSERT_TRUE(service->Score(Request({kConsistentRight, kInconsistentRight}), &resp).ok());
  ASSERT_EQ(resp.rewards_size(), 2);
  EXPECT_FLOAT_EQ(resp.rewards(0).consistency(), 1.0f);
  EXPECT_FLOAT_EQ(resp.rewards(0).total(), 2.0f);  // 0.5 + 1 * (1 + 0.5 * 1)
  EXPECT_FLOAT_EQ(resp.rewards(1).consistency(), -1.0f);
  EXPECT_FLOAT_EQ(resp.rewards(1).total(), 1.0f);  // 0.5 + 1 * (1 - 0.5)
  judge_server.Shutdown();
}

}  // namespace
}  // namespace r1r::reward
