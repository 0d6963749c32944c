// The learner's rank-group protocol over two Gloo ranks (threads of this process): followers run
// rank 0's commands in order until it says stop, heartbeats never reach the handler, one rank's
// failure fails the call on both, and a bad message ends following.
#include "common/train/rank_group.h"

#include <atomic>
#include <functional>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/dist/gloo_ranks.h"

namespace r1r::train {
namespace {

using ::testing::HasSubstr;

// Runs body(rank, group) on two Gloo ranks; false when this build has no Gloo.
bool OnTwoRanks(const std::function<void(int, dist::ProcessGroup*)>& body) {
  return dist::testing::OnGlooRanks(2, std::chrono::seconds(60), body);
}

TEST(train, RankGroupAloneIsANoOpThatPassesTheLocalStatusThrough) {
  RankGroup alone(nullptr, nullptr);
  EXPECT_FALSE(alone.grouped());
  EXPECT_FALSE(alone.is_follower());
  {
    absl::MutexLock lock(alone.command_mutex());
    EXPECT_TRUE(alone.Replicate('S', "x").ok());
  }
  EXPECT_TRUE(alone.Agree(absl::OkStatus()).ok());
  EXPECT_EQ(alone.Agree(absl::InvalidArgumentError("bad")).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(alone.HeartbeatIfIdle(absl::ZeroDuration()).ok());
  EXPECT_TRUE(alone.StopFollowers().ok());
  EXPECT_FALSE(alone.Shutdown(false).follower_left_running);
}

TEST(train, RankGroupFollowersRunCommandsInOrderUntilStop) {
  std::vector<std::pair<char, std::string>> seen;
  absl::Status followed = absl::UnknownError("not run");
  const bool ran = OnTwoRanks([&](int rank, dist::ProcessGroup* group) {
    RankGroup ranks(group, nullptr);
    if (rank == 0) {
      {
        absl::MutexLock lock(ranks.command_mutex());
        ASSERT_TRUE(ranks.Replicate('S', "first").ok());
      }
      // A heartbeat between two commands never reaches the handler.
      ASSERT_TRUE(ranks.HeartbeatIfIdle(absl::ZeroDuration()).ok());
      {
        absl::MutexLock lock(ranks.command_mutex());
        ASSERT_TRUE(ranks.Replicate('R', std::string("sec\0nd", 6)).ok());
      }
      const RankGroup::Stopped stopped = ranks.Shutdown(/*lost=*/false);
      EXPECT_TRUE(stopped.stop_followers.ok()) << stopped.stop_followers;
    } else {
      EXPECT_TRUE(ranks.is_follower());
      followed = ranks.Follow([&](char command, const std::string& body) {
        seen.emplace_back(command, body);
        return CommandOutcome{};
      });
    }
  });
  if (!ran) GTEST_SKIP() << "no Gloo in this LibTorch";
  EXPECT_TRUE(followed.ok()) << followed;
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], std::make_pair('S', std::string("first")));
  EXPECT_EQ(seen[1], std::make_pair('R', std::string("sec\0nd", 6)));
}

TEST(train, RankGroupAgreeFailsEveryRankWhenOneFails) {
  absl::Status on_zero, on_one;
  const bool ran = OnTwoRanks([&](int rank, dist::ProcessGroup* group) {
    RankGroup ranks(group, nullptr);
    if (rank == 0) {
      on_zero = ranks.Agree(absl::OkStatus());
    } else {
      on_one = ranks.Agree(absl::InvalidArgumentError("examples[0]: bad"));
    }
  });
  if (!ran) GTEST_SKIP() << "no Gloo in this LibTorch";
  EXPECT_EQ(on_zero.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(on_zero.message()), HasSubstr("1 of 2 learner ranks failed"));
  EXPECT_EQ(on_one.code(), absl::StatusCode::kInvalidArgument);  // its own error, not the summary
}

TEST(train, RankGroupFollowingEndsOnABadMessageButNotOnAFailedStep) {
  int handled = 0;
  absl::Status followed;
  const bool ran = OnTwoRanks([&](int rank, dist::ProcessGroup* group) {
    RankGroup ranks(group, nullptr);
    if (rank == 0) {
      absl::MutexLock lock(ranks.command_mutex());
      ASSERT_TRUE(ranks.Replicate('S', "fails").ok());
      ASSERT_TRUE(ranks.Replicate('?', "").ok());
    } else {
      followed = ranks.Follow([&](char command, const std::string&) {
        ++handled;
        if (command == 'S') return CommandOutcome{absl::InvalidArgumentError("a bad step"), false};
        return CommandOutcome{absl::DataLossError("unknown command"), true};
      });
    }
  });
  if (!ran) GTEST_SKIP() << "no Gloo in this LibTorch";
  EXPECT_EQ(handled, 2);
  EXPECT_EQ(followed.code(), absl::StatusCode::kDataLoss);
}

TEST(train, RankGroupFollowerThreadReportsTheEndAndShutdownJoinsIt) {
  std::atomic<int> done_calls{0};
  absl::Status ended = absl::UnknownError("not ended");
  const bool ran = OnTwoRanks([&](int rank, dist::ProcessGroup* group) {
    RankGroup ranks(group, nullptr);
    if (rank == 0) {
      ranks.StartHeartbeat(absl::Milliseconds(20));
      absl::SleepFor(absl::Milliseconds(100));  // several heartbeats go out
      EXPECT_TRUE(ranks.Shutdown(false).stop_followers.ok());
    } else {
      absl::Notification finished;
      ranks.StartFollowing([](char, const std::string&) { return CommandOutcome{}; },
                           [&](const absl::Status& s) {
                             ended = s;
                             ++done_calls;
                             finished.Notify();
                           });
      finished.WaitForNotification();
      EXPECT_FALSE(ranks.Shutdown(false).follower_left_running);
    }
  });
  if (!ran) GTEST_SKIP() << "no Gloo in this LibTorch";
  EXPECT_EQ(done_calls.load(), 1);
  EXPECT_TRUE(ended.ok()) << ended;
}

}  // namespace
}  // namespace r1r::train
