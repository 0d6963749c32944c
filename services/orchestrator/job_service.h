// JobService: validates and stores jobs, lists them, cancels them and streams their events.
#pragma once

#include <atomic>
#include <string>

#include "common/jobs/job_store.h"
#include "services/orchestrator/spec_paths.h"
#include "r1r/v1/jobs.grpc.pb.h"

namespace r1r::orchestrator {

class JobServiceImpl final : public v1::JobService::Service {
 public:
  // Jobs without a work_dir get one under `work_root`; the spec's paths must lie under `roots`.
  JobServiceImpl(jobs::JobStore* store, std::string work_root, SpecRoots roots)
      : store_(store), work_root_(std::move(work_root)), roots_(std::move(roots)) {}

  grpc::Status SubmitJob(grpc::ServerContext*, const v1::SubmitJobRequest*, v1::SubmitJobResponse*) override;
  grpc::Status GetJob(grpc::ServerContext*, const v1::GetJobRequest*, v1::Job*) override;
  grpc::Status ListJobs(grpc::ServerContext*, const v1::ListJobsRequest*, v1::ListJobsResponse*) override;
  grpc::Status CancelJob(grpc::ServerContext*, const v1::CancelJobRequest*, v1::Job*) override;
  grpc::Status WatchJob(grpc::ServerContext*, const v1::WatchJobRequest*, grpc::ServerWriter<v1::JobEvent>*) override;

  // Makes WatchJob streams return promptly (server shutdown).
  void StopWatchers() { stopping_ = true; }

 private:
  jobs::JobStore* store_;
  std::string work_root_;
  SpecRoots roots_;
  std::atomic<bool> stopping_{false};
};

}  // namespace r1r::orchestrator
