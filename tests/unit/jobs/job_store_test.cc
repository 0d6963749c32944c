#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "common/files/remove_tree.h"
#include "common/jobs/atomic_file.h"
#include "common/jobs/job_id.h"
#include "common/jobs/job_store.h"

namespace r1r::jobs {
namespace {

std::string FreshDir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/jobs_" + name;
  EXPECT_TRUE(r1r::files::RemoveTree(dir).ok()) << dir;
  return dir;
}

TEST(jobs, IdsAreWellFormedAndUnique) {
  const std::string a = NewJobId(absl::FromUnixSeconds(1'800'000'000));
  const std::string b = NewJobId(absl::FromUnixSeconds(1'800'000'000));
  EXPECT_TRUE(IsValidJobId(a)) << a;
  EXPECT_NE(a, b);
  EXPECT_EQ(a.substr(0, 20), "job-20270115-080000-");
  EXPECT_FALSE(IsValidJobId("../../etc/passwd"));
  EXPECT_FALSE(IsValidJobId("job-20270115-080000-ZZZZZZ"));
}

TEST(jobs, AtomicWriteReplacesWholeFile) {
  const std::string dir = FreshDir("atomic");
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/f.json";
  ASSERT_TRUE(WriteFileAtomically(path, std::string(10000, 'a')).ok());
  ASSERT_TRUE(WriteFileAtomically(path, "short").ok());
  EXPECT_EQ(*ReadFileToString(path), "short");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), {}), 1);  // no temp file left
}

TEST(jobs, StateSurvivesReopenAndRunningJobsRequeue) {
  const std::string dir = FreshDir("reopen");
  std::string id, id2;
  {
    auto store = JobStore::Open(dir);
    ASSERT_TRUE(store.ok()) << store.status();
    auto job = (*store)->Create("a", "name: a", {v1::PHASE_DATA_PREP, v1::PHASE_SFT}, dir + "/work");
    ASSERT_TRUE(job.ok());
    id = job->id();
    auto job2 = (*store)->Create("b", "name: b", {v1::PHASE_DATA_PREP}, dir + "/work");
    id2 = job2->id();
    ASSERT_TRUE((*store)->Update(id, [](v1::Job& j) { j.set_state(v1::JOB_STATE_RUNNING); }, "started").ok());
    ASSERT_TRUE((*store)->Update(id2, [](v1::Job& j) { j.set_state(v1::JOB_STATE_CANCELLED); }, "cancel").ok());
  }
  auto store = JobStore::Open(dir);
  ASSERT_TRUE(store.ok()) << store.status();
  auto a = (*store)->Get(id);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->state(), v1::JOB_STATE_QUEUED);  // RUNNING at crash time -> resumes
  EXPECT_EQ(a->phases_size(), 2);
  EXPECT_EQ((*store)->Get(id2)->state(), v1::JOB_STATE_CANCELLED);
  auto events = (*store)->EventsAfter(id, 0, absl::ZeroDuration());
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 3u);  // accepted, started, restarted
  EXPECT_EQ(events->back().seq(), 3);
  EXPECT_EQ((*store)->List(v1::JOB_STATE_UNSPECIFIED, 100).size(), 2u);
  EXPECT_EQ((*store)->List(v1::JOB_STATE_CANCELLED, 100).size(), 1u);
}

TEST(jobs, CorruptRecordIsAnErrorNotACrash) {
  const std::string dir = FreshDir("corrupt");
  std::filesystem::create_directories(dir + "/jobs");
  std::ofstream(dir + "/jobs/job-20260101-000000-abcdef.json") << "{not json";
  auto store = JobStore::Open(dir);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss);
}

TEST(jobs, TornEventLineIsSkipped) {
  const std::string dir = FreshDir("torn");
  std::string id;
  {
    auto store = JobStore::Open(dir);
    id = (*store)->Create("a", "name: a", {}, dir)->id();
  }
  std::ofstream(dir + "/jobs/" + id + ".events.jsonl", std::ios::app) << "{\"job_id\": \"trunc";
  auto store = JobStore::Open(dir);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->EventsAfter(id, 0, absl::ZeroDuration())->size(), 1u);
}

}  // namespace
}  // namespace r1r::jobs
