// state.json: what the learner writes reads back the same; a file that is not the learner's names
// itself in the error; serve's reading of the published version keeps its lenient rules.
#include "common/train/checkpoint_state.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/files/remove_tree.h"

namespace r1r::train {
namespace {

using ::testing::HasSubstr;

// A fresh directory for one test's state.json, removed afterwards.
struct StateDir {
  StateDir() : dir_(::testing::TempDir() + "/checkpoint_state_test_" + std::to_string(::getpid())) {
    EXPECT_TRUE(files::RemoveTree(dir_).ok());
    std::filesystem::create_directories(dir_);
  }
  ~StateDir() { files::RemoveTree(dir_).IgnoreError(); }
  void Write(const std::string& text) const { std::ofstream(dir_ + "/state.json") << text; }
  std::string dir_;
};

TEST(train, CheckpointStateRoundTripsEveryField) {
  CheckpointState s;
  s.job_id = "job-1";
  s.phase = "rl";
  s.policy_version = 7;
  s.sft_steps = 3;
  s.rl_steps = 9;
  s.skipped_steps = 1;
  s.data_cursor = 42;
  s.optimizer_steps = 18;
  auto back = CheckpointState::Parse(s.ToJson(), "state.json");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->job_id, "job-1");
  EXPECT_EQ(back->phase, "rl");
  EXPECT_EQ(back->policy_version, 7);
  EXPECT_EQ(back->sft_steps, 3);
  EXPECT_EQ(back->rl_steps, 9);
  EXPECT_EQ(back->skipped_steps, 1);
  EXPECT_EQ(back->data_cursor, 42);
  EXPECT_EQ(back->optimizer_steps, 18);
}

TEST(train, CheckpointStateKeepsTheLearnersLayout) {
  // Checkpoints written before this unit existed must still resume: the same keys, pretty-printed.
  CheckpointState s;
  s.job_id = "j";
  s.phase = "sft";
  EXPECT_EQ(s.ToJson(),
            "{\n  \"data_cursor\": 0,\n  \"job_id\": \"j\",\n  \"optimizer_steps\": 0,\n  \"phase\": \"sft\",\n"
            "  \"policy_version\": 0,\n  \"rl_steps\": 0,\n  \"sft_steps\": 0,\n  \"skipped_steps\": 0\n}");
}

TEST(train, CheckpointStateOptionalKeysDefaultAndRequiredOnesAreErrorsNamingTheFile) {
  auto old = CheckpointState::Parse(R"({"policy_version": 2, "sft_steps": 1, "rl_steps": 0})", "/x/state.json");
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(old->data_cursor, 0);
  EXPECT_EQ(old->phase, "");
  auto missing = CheckpointState::Parse(R"({"sft_steps": 1, "rl_steps": 0})", "/x/state.json");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("/x/state.json"));
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("policy_version"));
  auto garbage = CheckpointState::Parse("not json", "/y/state.json");
  EXPECT_EQ(garbage.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(garbage.status().message()), HasSubstr("/y/state.json"));
}

TEST(train, CheckpointStateReadNamesAMissingFile) {
  const StateDir d;
  const std::string& dir = d.dir_;
  auto s = CheckpointState::Read(dir);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.status().message()), HasSubstr(dir + "/state.json"));
  d.Write(R"({"policy_version": 4, "sft_steps": 0, "rl_steps": 4, "phase": "rl"})");
  auto read = CheckpointState::Read(dir);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->policy_version, 4);
  EXPECT_EQ(read->phase, "rl");
}

TEST(train, CheckpointStatePublishedVersionIsLenient) {
  const StateDir d;
  const std::string& dir = d.dir_;
  EXPECT_EQ(*ReadPublishedPolicyVersion(dir), 0);  // no state.json: a model that was never trained
  d.Write(R"({"policy_version": 12})");
  EXPECT_EQ(*ReadPublishedPolicyVersion(dir), 12);
  d.Write(R"({"version": 5})");  // older exports
  EXPECT_EQ(*ReadPublishedPolicyVersion(dir), 5);
  d.Write(R"({"job_id": "x"})");
  EXPECT_EQ(*ReadPublishedPolicyVersion(dir), 0);
  d.Write("[1, 2]");
  auto bad = ReadPublishedPolicyVersion(dir);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr(dir + "/state.json"));
}

}  // namespace
}  // namespace r1r::train
