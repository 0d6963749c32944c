#include "services/learner/learner_service.h"

#include <chrono>
#include <utility>

#include <absl/strings/str_cat.h>

#include "common/files/paths.h"
#include "common/model/weights.h"
#include "common/obs/log.h"
#include "common/rpc/auth.h"
#include "common/rpc/handler_guard.h"
#include "common/rpc/status.h"
#include "common/train/checkpoint.h"
#include "common/train/weight_stream.h"
#include "services/learner/learner_requests.h"

// The handlers: request checks, locking, replication to the other ranks, the weight stream. The
// work under the lock (Init, encoding, the steps, checkpoints) is in learner_steps.cc.
namespace r1r::learner {
namespace {

using rpc::Precondition;

obs::Metrics& MetricsOrOwn(obs::Metrics* given, std::unique_ptr<obs::Metrics>* own) {
  if (given != nullptr) return *given;
  *own = std::make_unique<obs::Metrics>("learner");
  return **own;
}

grpc::Status NotRankZero(const dist::ProcessGroup& group) {
  return Precondition(absl::StrCat("this learner is rank ", group.rank(), " of ", group.world_size(),
                                   " and follows rank 0: send training calls to rank 0"));
}

}  // namespace

LearnerServiceImpl::LearnerServiceImpl(LearnerOptions options, obs::Metrics* metrics)
    : options_(std::move(options)),
      metrics_(MetricsOrOwn(metrics, &own_metrics_)),
      ranks_(options_.group, options_.on_group_lost) {}

LearnerServiceImpl::~LearnerServiceImpl() = default;

void LearnerServiceImpl::StartRankThreads(absl::Duration heartbeat_every,
                                          std::function<void(const absl::Status&)> on_follow_end) {
  if (!ranks_.grouped()) return;
  if (!IsFollower()) {
    ranks_.StartHeartbeat(heartbeat_every);
    return;
  }
  spdlog::info("rank {} of {} follows rank 0", options_.group->rank(), options_.group->world_size());
  ranks_.StartFollowing([this](char command, const std::string& body) { return FollowCommand(command, body); },
                        std::move(on_follow_end));
}

grpc::Status LearnerServiceImpl::Init(grpc::ServerContext* ctx, const v1::InitRequest* req, v1::LearnerState* resp) {
  return rpc::GuardHandler(ctx, "Learner/Init", [&]() -> grpc::Status {
    if (auto s = rpc::Authorize(ctx); !s.ok()) return s;
    if (absl::Status s = CheckInitRequest(*req); !s.ok()) return rpc::ToGrpc(s);
    absl::MutexLock lock(&mu_);
    if (IsFollower()) return NotRankZero(*options_.group);
    if (absl::Status s = InitLocked(*req); !s.ok()) return rpc::ToGrpc(s);
    // The other ranks load what this one just created or linked (the model folder, the reference).
    absl::MutexLock group(ranks_.command_mutex());
    absl::Status replicated = Replicate(kInit, *req);
    if (replicated.ok()) replicated = ranks_.Agree(absl::OkStatus());
    if (!replicated.ok()) {
      initialised_ = false;
      return ReportGroupLoss(rpc::ToGrpc(replicated));
    }
    PublishWeights();
    FillState(resp);
    return grpc::Status::OK;
  });
}

grpc::Status LearnerServiceImpl::ReadyFor(const std::string& phase) const {
  if (!initialised_) return Precondition("learner not initialised: call Init first");
  if (phase_ != phase) {
    return Precondition(absl::StrCat(phase == "sft" ? "SftStep" : "RlStep", " in phase '", phase_, "': Init with phase ",
                                     phase));
  }
  return grpc::Status::OK;
}

grpc::Status LearnerServiceImpl::ReportGroupLoss(grpc::Status result) {
  ranks_.ReportIfLost(rpc::FromGrpc(result));
  return result;
}

absl::Status LearnerServiceImpl::Replicate(Command command, const google::protobuf::Message& request) {
  if (!ranks_.grouped()) return absl::OkStatus();
  std::string body;
  if (!request.SerializeToString(&body)) return absl::InternalError("cannot serialise the request for the ranks");
  return ranks_.Replicate(static_cast<char>(command), body);
}

train::CommandOutcome LearnerServiceImpl::FollowCommand(char command, const std::string& body) {
  const auto bad = [&](const char* what) {
    return train::CommandOutcome{absl::DataLossError(absl::StrCat("bad ", what, " from rank 0")), true};
  };
  absl::MutexLock lock(&mu_);
  absl::Status status;
  switch (command) {
    case kInit: {
      v1::InitRequest req;
      absl::Status local = req.ParseFromString(body) ? InitLocked(req) : absl::DataLossError("bad Init from rank 0");
      if (!local.ok()) initialised_ = false;
      status = ranks_.Agree(local);
      break;
    }
    case kSft: {
      v1::SftStepRequest req;
      v1::StepMetrics ignored;
      if (!req.ParseFromString(body)) return bad("SftStep");
      status = rpc::FromGrpc(SftStepLocked(req, &ignored));
      break;
    }
    case kSave: {
      v1::SaveCheckpointRequest req;
      if (!req.ParseFromString(body)) return bad("SaveCheckpoint");
      data_cursor_ = req.data_cursor();
      status = initialised_ && trainer_ ? WriteCheckpoint().status()
                                        : absl::FailedPreconditionError("SaveCheckpoint before Init");
      break;
    }
    case kRl: {
      v1::ExperienceBatch req;
      v1::StepMetrics ignored;
      if (!req.ParseFromString(body)) return bad("RlStep");
      status = rpc::FromGrpc(RlStepLocked(req, &ignored));
      break;
    }
    default:
      return {absl::DataLossError(absl::StrCat("unknown command '", std::string(1, command), "' from rank 0")), true};
  }
  if (!status.ok()) spdlog::error("rank {}: {}", options_.group->rank(), status.ToString());
  return {status, false};
}

void LearnerServiceImpl::FillState(v1::LearnerState* out) const {
  out->set_job_id(job_id_);
  out->set_policy_version(policy_version_);
  out->set_sft_steps(sft_steps_);
  out->set_rl_steps(rl_steps_);
  out->set_phase(phase_);
  out->set_skipped_steps(skipped_steps_);
  out->set_last_checkpoint(last_checkpoint_);
  out->set_data_cursor(data_cursor_);
  out->set_model_dir(policy_ ? policy_->model_dir() : "");
  out->set_weights_serial(weights_serial_);
  if (options_.weight_publisher != nullptr) out->set_weight_sync_store(options_.weight_publisher->address());
}

void LearnerServiceImpl::PublishWeights() {
  ++weights_serial_;
  if (options_.weight_publisher == nullptr || !policy_) return;
  if (absl::Status s = options_.weight_publisher->Publish(policy_->model(), policy_version_, weights_serial_); !s.ok()) {
    spdlog::warn("weight sync: version {} not published, actors pull the stream: {}", policy_version_, s.ToString());
  }
}

grpc::Status LearnerServiceImpl::SftStep(grpc::ServerContext* ctx, const v1::SftStepRequest* req,
                                         v1::StepMetrics* resp) {
  return rpc::GuardHandler(ctx, "Learner/SftStep", [&]() -> grpc::Status {
    if (auto s = rpc::Authorize(ctx); !s.ok()) return s;
    if (absl::Status s = CheckSftStepRequest(*req); !s.ok()) return rpc::ToGrpc(s);
    absl::MutexLock lock(&mu_);
    if (IsFollower()) return NotRankZero(*options_.group);
    if (grpc::Status s = ReadyFor("sft"); !s.ok()) return s;
    absl::MutexLock group(ranks_.command_mutex());
    if (absl::Status s = Replicate(kSft, *req); !s.ok()) return ReportGroupLoss(rpc::ToGrpc(s));
    grpc::Status done = SftStepLocked(*req, resp);
    if (done.ok()) PublishWeights();
    return ReportGroupLoss(done);
  });
}

grpc::Status LearnerServiceImpl::RlStep(grpc::ServerContext* ctx, const v1::ExperienceBatch* req,
                                        v1::StepMetrics* resp) {
  return rpc::GuardHandler(ctx, "Learner/RlStep", [&]() -> grpc::Status {
    if (auto s = rpc::Authorize(ctx); !s.ok()) return s;
    if (absl::Status s = CheckExperienceBatch(*req); !s.ok()) return rpc::ToGrpc(s);
    absl::MutexLock lock(&mu_);
    if (IsFollower()) return NotRankZero(*options_.group);
    if (grpc::Status s = ReadyFor("rl"); !s.ok()) return s;
    absl::MutexLock group(ranks_.command_mutex());
    if (absl::Status s = Replicate(kRl, *req); !s.ok()) return ReportGroupLoss(rpc::ToGrpc(s));
    grpc::Status done = RlStepLocked(*req, resp);
    if (done.ok()) PublishWeights();
    return ReportGroupLoss(done);
  });
}

grpc::Status LearnerServiceImpl::SaveCheckpoint(grpc::ServerContext* ctx, const v1::SaveCheckpointRequest* req,
                                                v1::SaveCheckpointResponse* resp) {
  return rpc::GuardHandler(ctx, "Learner/SaveCheckpoint", [&]() -> grpc::Status {
    if (auto s = rpc::Authorize(ctx); !s.ok()) return s;
    if (absl::Status s = CheckSaveCheckpointRequest(*req); !s.ok()) return rpc::ToGrpc(s);
    absl::MutexLock lock(&mu_);
    if (IsFollower()) return NotRankZero(*options_.group);
    if (!initialised_) return Precondition("learner not initialised: call Init first");
    // The export replaces the directory: only one under --export-root that is new, empty or ours.
    std::string export_dir;
    if (!req->export_dir().empty()) {
      auto confined = options_.export_roots.Confine(req->export_dir(), "export_dir");
      if (!confined.ok()) return rpc::ToGrpc(confined.status());
      if (absl::Status s = files::CheckReplaceable(*confined, "export_dir"); !s.ok()) return rpc::ToGrpc(s);
      export_dir = *confined;
    }
    data_cursor_ = req->data_cursor();
    absl::StatusOr<std::string> dir;
    if (trainer_ && trainer_->optimizer_state_is_sharded()) {
      // Every rank writes its optimizer shard: the other ranks write theirs on this command.
      absl::MutexLock group(ranks_.command_mutex());
      if (absl::Status s = Replicate(kSave, *req); !s.ok()) return ReportGroupLoss(rpc::ToGrpc(s));
      dir = WriteCheckpoint();
      if (!dir.ok()) return ReportGroupLoss(rpc::ToGrpc(dir.status()));
    } else {
      dir = WriteCheckpoint();
    }
    if (!dir.ok()) return rpc::ToGrpc(dir.status());
    if (!export_dir.empty()) {
      if (absl::Status s = train::ExportModelDir(*policy_, export_dir, State().ToJson()); !s.ok()) {
        return rpc::ToGrpc(s);
      }
      if (absl::Status s = files::MarkOwned(export_dir, "r1r-learner SaveCheckpoint export"); !s.ok()) {
        return rpc::ToGrpc(s);
      }
    }
    resp->set_path(*dir);
    return grpc::Status::OK;
  });
}

grpc::Status LearnerServiceImpl::StreamWeights(grpc::ServerContext* ctx, const v1::StreamWeightsRequest* req,
                                               grpc::ServerWriter<v1::WeightChunk>* writer) {
  return rpc::GuardHandler(ctx, "Learner/StreamWeights", [&]() -> grpc::Status {
    if (auto s = rpc::Authorize(ctx); !s.ok()) return s;
    auto chunk_bytes = train::WeightChunkBytes(req->chunk_bytes());
    if (!chunk_bytes.ok()) return rpc::ToGrpc(chunk_bytes.status());
    const auto start = std::chrono::steady_clock::now();
    // A shared lock for the whole stream: training waits, other actors stream concurrently, and the
    // chunks come straight from the parameters (no snapshot copy of the model).
    absl::ReaderMutexLock lock(&mu_);
    if (!initialised_) return Precondition("learner not initialised: call Init first");
    if (req->min_version() > policy_version_) {
      return Precondition(absl::StrCat("min_version: ", req->min_version(), " requested, the learner holds version ",
                                       policy_version_));
    }
    const int64_t version = policy_version_;
    auto sent = train::SendWeights(
        model::ExportWeights(policy_->model()), version, *chunk_bytes, [&](const train::WeightChunkView& view) {
          if (!view.end_of_stream && ctx->IsCancelled()) return absl::CancelledError("client cancelled the weight stream");
          v1::WeightChunk chunk;
          chunk.set_version(view.version);
          if (view.end_of_stream) {  // the trailer: no tensor, only the checksum and byte count
            chunk.set_end_of_stream(true);
            chunk.set_crc32c(view.crc32c);
            chunk.set_total_bytes(view.total_bytes);
          } else {
            chunk.set_tensor_name(view.tensor_name);
            chunk.set_dtype(view.dtype);
            for (int64_t d : view.shape) chunk.add_shape(d);
            chunk.set_offset(view.offset);
            chunk.set_data(view.data, view.size);
            chunk.set_last_chunk_of_tensor(view.last_chunk_of_tensor);
          }
          return writer->Write(chunk) ? absl::OkStatus() : absl::UnavailableError("weight stream broken");
        });
    if (!sent.ok()) return rpc::ToGrpc(sent.status());
    const double seconds = rpc::SecondsSince(start);
    spdlog::info("streamed weights version={} bytes={} seconds={:.3f}", version, *sent, seconds);
    metrics_.weight_sync_seconds.Observe(seconds);
    metrics_.weight_sync_bytes.Increment(static_cast<double>(*sent));
    return grpc::Status::OK;
  });
}

grpc::Status LearnerServiceImpl::GetState(grpc::ServerContext* ctx, const v1::GetStateRequest*,
                                          v1::LearnerState* resp) {
  if (auto s = rpc::Authorize(ctx); !s.ok()) return s;
  absl::ReaderMutexLock lock(&mu_);
  FillState(resp);
  return grpc::Status::OK;
}

}  // namespace r1r::learner
