// JobService handlers called in-process (no server, no network): what a bad request is told, what a
// dry run leaves behind, what a submitted job holds, and what cancel does to a job and its phases.
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <grpcpp/server_context.h>

#include "services/orchestrator/job_service.h"
#include "tests/unit/orchestrator/orchestrator_world.h"

namespace r1r::orchestrator {
namespace {

struct ServiceWorld : OrchestratorWorld {
  explicit ServiceWorld(const std::string& name)
      : OrchestratorWorld(name), service(store.get(), work_root, roots) {}

  grpc::Status Submit(const v1::SubmitJobRequest& req, v1::SubmitJobResponse* resp) {
    grpc::ServerContext ctx;
    return service.SubmitJob(&ctx, &req, resp);
  }
  grpc::Status SubmitYaml(const std::string& yaml, v1::SubmitJobResponse* resp, bool dry_run = false) {
    v1::SubmitJobRequest req;
    req.set_spec_yaml(yaml);
    req.set_dry_run(dry_run);
    return Submit(req, resp);
  }

  JobServiceImpl service;
};

TEST(orchestrator, SubmitRefusesABadSpecNamingWhatIsWrong) {
  ServiceWorld w("bad_spec");
  v1::SubmitJobResponse resp;
  grpc::Status s = w.Submit(v1::SubmitJobRequest{}, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "spec_yaml or spec_path is required");

  s = w.SubmitYaml("name: x\nmodel: {init: tiny}\n", &resp);  // no data section
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_NE(s.error_message().find("data"), std::string::npos) << s.error_message();

  s = w.SubmitYaml(TinySpecYaml("# caf\xC3(\n"), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message().rfind("spec_yaml: not valid UTF-8 (byte ", 0), 0u) << s.error_message();

  // A data.path outside --data-root is refused at submit, naming the field.
  s = w.SubmitYaml("name: x\nmodel: {init: tiny, device: cpu, dtype: float32}\ntokenizer: {train_vocab_size: 300}\n"
                   "data: {source: pairs_jsonl, path: /etc/hostname}\n",
                   &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_NE(s.error_message().find("data.path"), std::string::npos) << s.error_message();

  v1::SubmitJobRequest by_path;
  by_path.set_spec_path(w.data_root + "/absent.yaml");
  s = w.Submit(by_path, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_EQ(s.error_message().rfind("spec_path: ", 0), 0u) << s.error_message();
  EXPECT_TRUE(w.store->List(v1::JOB_STATE_UNSPECIFIED, 100).empty());
}

TEST(orchestrator, DryRunReturnsThePlanAndStoresNothing) {
  ServiceWorld w("dry_run");
  v1::SubmitJobResponse resp;
  const grpc::Status s = w.SubmitYaml(TinySpecYaml(), &resp, /*dry_run=*/true);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.job().name(), "tiny");
  EXPECT_EQ(resp.job().id(), "");
  EXPECT_FALSE(resp.plan().empty());
  EXPECT_TRUE(w.store->List(v1::JOB_STATE_UNSPECIFIED, 100).empty());
}

TEST(orchestrator, SubmittedJobIsQueuedWithOnePhasePerStageItRuns) {
  ServiceWorld w("submit");
  v1::SubmitJobResponse resp;
  // Spec read from a file under --data-root; SFT switched off.
  const std::string path = w.data_root + "/job.yaml";
  std::ofstream(path) << TinySpecYaml("sft: {enabled: false}\n");
  v1::SubmitJobRequest req;
  req.set_spec_path(path);
  const grpc::Status s = w.Submit(req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.job().state(), v1::JOB_STATE_QUEUED);
  std::vector<v1::Phase> phases;
  for (const auto& p : resp.job().phases()) phases.push_back(p.phase());
  EXPECT_EQ(phases, (std::vector<v1::Phase>{v1::PHASE_DATA_PREP, v1::PHASE_RL, v1::PHASE_EVAL, v1::PHASE_PUBLISH}));
  EXPECT_EQ(resp.job().work_dir().rfind(w.work_root, 0), 0u) << resp.job().work_dir();

  grpc::ServerContext ctx;
  v1::GetJobRequest get;
  get.set_id(resp.job().id());
  v1::Job got;
  ASSERT_TRUE(w.service.GetJob(&ctx, &get, &got).ok());
  EXPECT_EQ(got.spec_yaml(), TinySpecYaml("sft: {enabled: false}\n"));
}

TEST(orchestrator, UnknownOrMalformedJobIdsAreRefused) {
  ServiceWorld w("unknown");
  grpc::ServerContext ctx;
  v1::Job job;
  v1::GetJobRequest get;
  get.set_id("nope");
  grpc::Status s = w.service.GetJob(&ctx, &get, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message().rfind("id: 'nope' is not a job id", 0), 0u) << s.error_message();
  get.set_id("job-20260101-000000-abcdef");  // well formed, never created
  s = w.service.GetJob(&ctx, &get, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  v1::CancelJobRequest cancel;
  cancel.set_id("job-20260101-000000-abcdef");
  s = w.service.CancelJob(&ctx, &cancel, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();

  v1::ListJobsRequest list;
  v1::ListJobsResponse listed;
  list.set_page_size(1001);
  s = w.service.ListJobs(&ctx, &list, &listed);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "page_size: must be in [0, 1000]");
  list.set_page_size(0);
  list.set_state_filter(static_cast<v1::JobState>(99));
  s = w.service.ListJobs(&ctx, &list, &listed);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "state_filter: unknown state");

  v1::WatchJobRequest watch;
  watch.set_id("job-20260101-000000-abcdef");
  watch.set_after_seq(-1);
  s = w.service.WatchJob(&ctx, &watch, nullptr);  // refused before it writes anything
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "after_seq: must be >= 0");
}

TEST(orchestrator, CancelStopsTheJobAndItsOpenPhasesOnce) {
  ServiceWorld w("cancel");
  v1::SubmitJobResponse resp;
  ASSERT_TRUE(w.SubmitYaml(TinySpecYaml(), &resp).ok());
  // The data prep finished before the cancel: it stays SUCCEEDED.
  ASSERT_TRUE(w.store
                  ->Update(resp.job().id(),
                           [](v1::Job& j) { j.mutable_phases(0)->set_state(v1::JOB_STATE_SUCCEEDED); }, "prep done")
                  .ok());
  grpc::ServerContext ctx;
  v1::CancelJobRequest cancel;
  cancel.set_id(resp.job().id());
  v1::Job job;
  ASSERT_TRUE(w.service.CancelJob(&ctx, &cancel, &job).ok());
  EXPECT_EQ(job.state(), v1::JOB_STATE_CANCELLED);
  ASSERT_EQ(job.phases_size(), 5);
  EXPECT_EQ(job.phases(0).state(), v1::JOB_STATE_SUCCEEDED);
  for (int i = 1; i < job.phases_size(); ++i) EXPECT_EQ(job.phases(i).state(), v1::JOB_STATE_CANCELLED) << i;
  const grpc::Status again = w.service.CancelJob(&ctx, &cancel, &job);
  EXPECT_EQ(again.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(again.error_message(), "job " + resp.job().id() + " already finished (JOB_STATE_CANCELLED)");
}

}  // namespace
}  // namespace r1r::orchestrator
