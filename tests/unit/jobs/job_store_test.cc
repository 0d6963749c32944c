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

TEST(jobs, CorruptRecordsAreQuarantinedAndTheOthersServed) {
  const std::string dir = FreshDir("corrupt");
  std::string good, truncated;
  {
    auto store = JobStore::Open(dir);
    ASSERT_TRUE(store.ok()) << store.status();
    good = (*store)->Create("good", "name: good", {v1::PHASE_DATA_PREP}, dir + "/work")->id();
    truncated = (*store)->Create("cut", "name: cut", {v1::PHASE_DATA_PREP}, dir + "/work")->id();
  }
  const std::string cut_path = dir + "/jobs/" + truncated + ".json";
  const std::string text = *ReadFileToString(cut_path);
  std::ofstream(cut_path, std::ios::trunc) << text.substr(0, text.size() / 2);  // torn record
  std::ofstream(dir + "/jobs/job-20260101-000000-abcdef.json");                   // empty record
  std::ofstream(dir + "/jobs/job-20260101-000000-bcdefa.json") << "{not json";
  auto store = JobStore::Open(dir);
  ASSERT_TRUE(store.ok()) << store.status();
  const std::vector<v1::Job> listed = (*store)->List(v1::JOB_STATE_UNSPECIFIED, 100);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].id(), good);
  EXPECT_EQ((*store)->quarantined().size(), 3u);
  EXPECT_FALSE(std::filesystem::exists(cut_path));
  // The 3 records and the event log of the one that had a log.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir + "/quarantine"), {}), 4);
  auto reopened = JobStore::Open(dir);  // nothing left to quarantine
  ASSERT_TRUE(reopened.ok());
  EXPECT_TRUE((*reopened)->quarantined().empty());
}

TEST(jobs, RecordFromANewerVersionWithUnknownFieldsLoads) {
  const std::string dir = FreshDir("newer");
  std::string id;
  {
    auto store = JobStore::Open(dir);
    id = (*store)->Create("a", "name: a", {v1::PHASE_DATA_PREP}, dir + "/work")->id();
  }
  const std::string path = dir + "/jobs/" + id + ".json";
  std::string text = *ReadFileToString(path);
  text.insert(1, "\"field_from_the_future\": {\"x\": 1}, ");
  ASSERT_TRUE(WriteFileAtomically(path, text).ok());
  auto store = JobStore::Open(dir);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_TRUE((*store)->Get(id).ok());
  EXPECT_TRUE((*store)->quarantined().empty());
}

TEST(jobs, NonUtf8SpecIsRejectedAndNonUtf8MessagesAreRepaired) {
  const std::string dir = FreshDir("utf8");
  auto store = JobStore::Open(dir);
  ASSERT_TRUE(store.ok());
  auto bad = (*store)->Create("a", "name: \xff\xfe", {}, dir + "/work");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string id = (*store)->Create("b", "name: b", {}, dir + "/work")->id();
  auto updated = (*store)->Update(id, [](v1::Job& j) { j.set_error("cannot read '\xff\xc0.png'"); }, "failed \xff");
  ASSERT_TRUE(updated.ok()) << updated.status();
  std::string wire;
  ASSERT_TRUE((*store)->List(v1::JOB_STATE_UNSPECIFIED, 10)[0].SerializeToString(&wire));
  v1::Job received;
  EXPECT_TRUE(received.ParseFromString(wire));  // a ListJobs client parses it (proto3 checks UTF-8)
  auto reopened = JobStore::Open(dir);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_TRUE((*reopened)->quarantined().empty());
  EXPECT_NE((*reopened)->Get(id)->error().find("\xEF\xBF\xBD"), std::string::npos);  // U+FFFD
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
