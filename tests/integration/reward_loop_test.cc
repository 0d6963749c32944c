// r1r-reward + r1r-judge (rule backend) as real processes: the reward breakdown of hand-made
// responses, and a clear UNAVAILABLE (never a silent zero) when the judge is down.
#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/files/remove_tree.h"
#include "common/rpc/client.h"
#include "r1r/v1/reward.grpc.pb.h"
#include "tests/integration/process.h"

namespace r1r::testing {
namespace {

std::string Dir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/loop_" + name;
  EXPECT_TRUE(r1r::files::RemoveTree(dir).ok()) << dir;
  std::filesystem::create_directories(dir);
  return dir;
}

Process Start(const std::string& service, const std::string& dir, std::vector<std::string> extra) {
  std::vector<std::string> args = {"--listen", "127.0.0.1:0", "--metrics-listen", ""};
  args.insert(args.end(), extra.begin(), extra.end());
  auto p = Process::Start(BinDir() + "/r1r-" + service, args, dir + "/" + service + ".log");
  EXPECT_TRUE(p.ok()) << p.status();
  return std::move(*p);
}

void AddTrajectory(v1::ScoreTrajectoriesRequest& req, const std::string& id, const std::string& text, int label) {
  v1::Trajectory* t = req.add_trajectories();
  t->set_prompt_id(id);
  t->set_response_text(text);
  t->mutable_preference()->set_label(label);
}

grpc::Status Score(int port, const v1::ScoreTrajectoriesRequest& req, v1::ScoreTrajectoriesResponse* resp,
                   absl::Duration timeout = absl::Seconds(30)) {
  rpc::ClientOptions o;
  o.target = "127.0.0.1:" + std::to_string(port);
  o.timeout = timeout;
  auto stub = v1::RewardAggregator::NewStub(*rpc::MakeChannel(o));
  grpc::ClientContext ctx;
  rpc::PrepareContext(ctx, o);
  return stub->ScoreTrajectories(&ctx, req, resp);
}

TEST(loop, RewardBreakdownOfHandMadeResponses) {
  const std::string dir = Dir("breakdown");
  Process judge = Start("judge", dir, {"--backend", "rule"});
  Process reward = Start("reward", dir, {"--judge-target", "127.0.0.1:" + std::to_string(judge.port())});
  v1::ScoreTrajectoriesRequest req;
  AddTrajectory(req, "right", "<think>Response 1 counts three circles correctly, so response 1 is better.</think><answer>1</answer>", 1);
  AddTrajectory(req, "wrong", "<think>Response 2 counts correctly, so response 2 is better.</think><answer>2</answer>", 1);
  AddTrajectory(req, "malformed", "I think <answer>1</answer> because response 1 is better", 1);
  AddTrajectory(req, "inconsistent", "<think>Response 2 is better.</think><answer>1</answer>", 1);
  v1::ScoreTrajectoriesResponse resp;
  grpc::Status s = Score(reward.port(), req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(resp.rewards_size(), 4);
  struct Expect { float format, result, consistency, total; int parsed; };
  const Expect expected[] = {
      {1, 1, 1, 2.0f, 1},    // 0.5*1 + 1*(1 + 0.5*1)
      {1, 0, 1, 0.5f, 2},    // consistent but wrong: only the format reward
      {0, 1, -1, 0.5f, 1},   // right answer, no <think>: 0 + 1*(1 - 0.5)
      {1, 1, -1, 1.0f, 1},   // reasoning prefers 2, answer says 1: 0.5 + 1*(1 - 0.5)
  };
  for (int i = 0; i < 4; ++i) {
    SCOPED_TRACE(req.trajectories(i).prompt_id());
    EXPECT_EQ(resp.rewards(i).prompt_id(), req.trajectories(i).prompt_id());
    EXPECT_EQ(resp.rewards(i).format(), expected[i].format);
    EXPECT_EQ(resp.rewards(i).result(), expected[i].result);
    EXPECT_EQ(resp.rewards(i).consistency(), expected[i].consistency);
    EXPECT_FLOAT_EQ(resp.rewards(i).total(), expected[i].total);
    EXPECT_EQ(resp.rewards(i).parsed_answer(), expected[i].parsed);
  }
}

TEST(loop, RewardRejectsBadLabelsAndFailsClearlyWhenJudgeIsDown) {
  const std::string dir = Dir("judge_down");
  Process reward = Start("reward", dir, {"--judge-target", "127.0.0.1:1", "--judge-attempts", "2",
                                         "--judge-timeout-seconds", "1"});
  v1::ScoreTrajectoriesRequest bad;
  AddTrajectory(bad, "x", "<think>a</think><answer>1</answer>", 3);
  v1::ScoreTrajectoriesResponse resp;
  grpc::Status s = Score(reward.port(), bad, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("trajectories[0].preference.label"));

  v1::ScoreTrajectoriesRequest req;
  AddTrajectory(req, "x", "<think>Response 1 is better.</think><answer>1</answer>", 1);
  s = Score(reward.port(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("judge at 127.0.0.1:1 failed after 2 attempt(s)"));
  EXPECT_EQ(resp.rewards_size(), 0);

  req.mutable_weights()->set_skip_judge(true);  // the ablation without a referee still scores
  s = Score(reward.port(), req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_FLOAT_EQ(resp.rewards(0).total(), 1.5f);
}

}  // namespace
}  // namespace r1r::testing
