#include "services/orchestrator/job_service.h"

#include <absl/strings/str_cat.h>

#include "common/config/job_spec.h"
#include "common/config/memory_plan.h"
#include "common/config/plan.h"
#include "common/files/paths.h"
#include "common/jobs/atomic_file.h"
#include "common/jobs/job_id.h"
#include "common/rpc/auth.h"
#include "common/rpc/request_limits.h"
#include "common/rpc/status.h"
#include "common/tokenizer/utf8.h"

namespace r1r::orchestrator {
namespace {

using rpc::Invalid;
using rpc::kMaxSpecBytes;

grpc::Status CheckId(const std::string& id) {
  if (!jobs::IsValidJobId(id)) {
    return Invalid(absl::StrCat("id: '", id.substr(0, 64), "' is not a job id (job-YYYYMMDD-HHMMSS-xxxxxx)"));
  }
  return grpc::Status::OK;
}

// The offset of the first byte that is not part of a well-formed UTF-8 sequence (for the message).
size_t FirstInvalidUtf8Byte(const std::string& text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    const size_t len = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || !tokenizer::IsValidUtf8(std::string_view(text).substr(i, len))) return i;
    i += len;
  }
  return i;
}

std::vector<v1::Phase> PhasesOf(const config::JobSpec& spec) {
  std::vector<v1::Phase> phases = {v1::PHASE_DATA_PREP};
  if (spec.sft.enabled) phases.push_back(v1::PHASE_SFT);
  if (spec.rl.enabled) phases.push_back(v1::PHASE_RL);
  phases.push_back(v1::PHASE_EVAL);
  phases.push_back(v1::PHASE_PUBLISH);
  return phases;
}

}  // namespace

grpc::Status JobServiceImpl::SubmitJob(grpc::ServerContext* ctx, const v1::SubmitJobRequest* req,
                                       v1::SubmitJobResponse* resp) {
  if (grpc::Status s = rpc::Authorize(ctx); !s.ok()) return s;
  std::string yaml;
  switch (req->source_case()) {
    case v1::SubmitJobRequest::kSpecYaml:
      yaml = req->spec_yaml();
      break;
    case v1::SubmitJobRequest::kSpecPath: {
      // Only a regular file under --data-root, its size checked before reading.
      auto path = roots_.data.Confine(req->spec_path(), "spec_path");
      if (!path.ok()) return rpc::ToGrpc(path.status());
      auto text = files::ReadRegularFile(*path, kMaxSpecBytes);
      if (!text.ok()) return Invalid(absl::StrCat("spec_path: ", text.status().message()));
      yaml = *text;
      break;
    }
    default:
      return Invalid("spec_yaml or spec_path is required");
  }
  if (yaml.size() > kMaxSpecBytes) {
    return Invalid(absl::StrCat("spec: ", yaml.size(), " bytes is over the limit of ", kMaxSpecBytes));
  }
  // The spec is stored in proto3 strings, which must hold UTF-8 (else every ListJobs fails).
  if (!tokenizer::IsValidUtf8(yaml)) {
    return Invalid(absl::StrCat(req->source_case() == v1::SubmitJobRequest::kSpecPath ? "spec_path" : "spec_yaml",
                                ": not valid UTF-8 (byte ", FirstInvalidUtf8Byte(yaml), ")"));
  }
  auto spec = config::ParseJobSpec(yaml);
  if (!spec.ok()) return rpc::ToGrpc(spec.status());
  if (absl::Status s = ConfineSpecPaths(roots_, *spec); !s.ok()) return rpc::ToGrpc(s);
  // A learner that cannot fit its GPUs (the memory plan) is refused before anything is stored.
  if (absl::Status fits = config::CheckLearnerFits(*spec); !fits.ok()) return rpc::ToGrpc(fits);
  resp->set_plan(config::DescribePlan(*spec));
  if (req->dry_run()) {
    resp->mutable_job()->set_name(spec->name);
    resp->mutable_job()->set_spec_yaml(yaml);
    return grpc::Status::OK;
  }
  auto job = store_->Create(spec->name, yaml, PhasesOf(*spec), spec->work_dir.empty() ? work_root_ : spec->work_dir);
  if (!job.ok()) return rpc::ToGrpc(job.status());
  *resp->mutable_job() = *job;
  return grpc::Status::OK;
}

grpc::Status JobServiceImpl::GetJob(grpc::ServerContext* ctx, const v1::GetJobRequest* req, v1::Job* resp) {
  if (grpc::Status s = rpc::Authorize(ctx); !s.ok()) return s;
  if (grpc::Status s = CheckId(req->id()); !s.ok()) return s;
  auto job = store_->Get(req->id());
  if (!job.ok()) return rpc::ToGrpc(job.status());
  *resp = *job;
  return grpc::Status::OK;
}

grpc::Status JobServiceImpl::ListJobs(grpc::ServerContext* ctx, const v1::ListJobsRequest* req,
                                      v1::ListJobsResponse* resp) {
  if (grpc::Status s = rpc::Authorize(ctx); !s.ok()) return s;
  if (req->page_size() < 0 || req->page_size() > 1000) return Invalid("page_size: must be in [0, 1000]");
  if (!v1::JobState_IsValid(req->state_filter())) return Invalid("state_filter: unknown state");
  for (auto& job : store_->List(req->state_filter(), req->page_size() == 0 ? 100 : req->page_size())) {
    *resp->add_jobs() = std::move(job);
  }
  return grpc::Status::OK;
}

grpc::Status JobServiceImpl::CancelJob(grpc::ServerContext* ctx, const v1::CancelJobRequest* req, v1::Job* resp) {
  if (grpc::Status s = rpc::Authorize(ctx); !s.ok()) return s;
  if (grpc::Status s = CheckId(req->id()); !s.ok()) return s;
  auto current = store_->Get(req->id());
  if (!current.ok()) return rpc::ToGrpc(current.status());
  if (jobs::JobStore::IsTerminal(current->state())) {
    return rpc::Precondition(
        absl::StrCat("job ", req->id(), " already finished (", v1::JobState_Name(current->state()), ")"));
  }
  auto job = store_->Update(
      req->id(),
      [](v1::Job& j) {
        j.set_state(v1::JOB_STATE_CANCELLED);
        for (auto& p : *j.mutable_phases()) {
          if (!jobs::JobStore::IsTerminal(p.state())) p.set_state(v1::JOB_STATE_CANCELLED);
        }
      },
      "cancelled by request");
  if (!job.ok()) return rpc::ToGrpc(job.status());
  *resp = *job;
  return grpc::Status::OK;
}

grpc::Status JobServiceImpl::WatchJob(grpc::ServerContext* ctx, const v1::WatchJobRequest* req,
                                      grpc::ServerWriter<v1::JobEvent>* writer) {
  if (grpc::Status s = rpc::Authorize(ctx); !s.ok()) return s;
  if (grpc::Status s = CheckId(req->id()); !s.ok()) return s;
  if (req->after_seq() < 0) return Invalid("after_seq: must be >= 0");
  int64_t seq = req->after_seq();
  while (!ctx->IsCancelled() && !stopping_) {
    auto events = store_->EventsAfter(req->id(), seq, absl::Milliseconds(500));
    if (!events.ok()) return rpc::ToGrpc(events.status());
    for (const auto& ev : *events) {
      if (!writer->Write(ev)) return grpc::Status::OK;  // client went away
      seq = ev.seq();
    }
    auto job = store_->Get(req->id());
    if (job.ok() && jobs::JobStore::IsTerminal(job->state()) && events->empty()) return grpc::Status::OK;
  }
  return grpc::Status::OK;
}

}  // namespace r1r::orchestrator
