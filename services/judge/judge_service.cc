#include "services/judge/judge_service.h"

#include <chrono>

#include <absl/strings/str_cat.h>

#include "common/reward/referee.h"
#include "common/rpc/auth.h"
#include "common/rpc/status.h"

namespace r1r::judge {
namespace {

constexpr int kMaxItems = 1024;
constexpr size_t kMaxIdBytes = 256;
constexpr size_t kMaxResponseBytes = 64 << 10;

grpc::Status Validate(const v1::JudgeBatchRequest& req) {
  if (req.items_size() == 0 || req.items_size() > kMaxItems) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("items: need 1..", kMaxItems, " items, got ", req.items_size()));
  }
  for (int i = 0; i < req.items_size(); ++i) {
    const auto& item = req.items(i);
    if (item.item_id().size() > kMaxIdBytes) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, absl::StrCat("items[", i, "].item_id: over 256 bytes"));
    }
    if (item.response().empty() || item.response().size() > kMaxResponseBytes) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          absl::StrCat("items[", i, "].response: must be 1 byte to 64 KiB, got ", item.response().size()));
    }
  }
  return grpc::Status::OK;
}

const char* VerdictLabel(reward::Consistency c) {
  switch (c) {
    case reward::Consistency::kConsistent: return "consistent";
    case reward::Consistency::kInconsistent: return "inconsistent";
    default: return "unknown";
  }
}

}  // namespace

JudgeServiceImpl::JudgeServiceImpl(std::unique_ptr<RefereeBackend> backend, obs::Metrics* metrics)
    : backend_(std::move(backend)), metrics_(metrics) {
  metrics_->Counter("r1r_judge_rejected_requests_total", "Judge requests rejected by validation.");
  metrics_->Counter("r1r_judge_backend_errors_total", "Batches the referee backend could not answer.");
  for (reward::Consistency c : {reward::Consistency::kConsistent, reward::Consistency::kInconsistent,
                                reward::Consistency::kUnknown}) {
    metrics_->Counter("r1r_judge_verdicts_total", "Referee verdicts by outcome.", {{"verdict", VerdictLabel(c)}});
  }
  metrics_->Counter("r1r_judge_items_total", "Responses judged.");
}

grpc::Status JudgeServiceImpl::JudgeBatch(grpc::ServerContext* ctx, const v1::JudgeBatchRequest* req,
                                          v1::JudgeBatchResponse* resp) {
  if (grpc::Status s = rpc::Authorize(ctx); !s.ok()) return s;
  if (grpc::Status s = Validate(*req); !s.ok()) {
    metrics_->Counter("r1r_judge_rejected_requests_total", "Judge requests rejected by validation.").Increment();
    return s;
  }
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::string> responses;
  responses.reserve(req->items_size());
  for (const auto& item : req->items()) responses.push_back(item.response());
  auto verdicts = backend_->Assess(responses);
  if (!verdicts.ok()) {
    metrics_->Counter("r1r_judge_backend_errors_total", "Batches the referee backend could not answer.").Increment();
    return rpc::ToGrpc(verdicts.status());
  }
  resp->set_backend(backend_->name());
  for (int i = 0; i < req->items_size(); ++i) {
    const Verdict& v = (*verdicts)[i];
    v1::JudgeVerdict* out = resp->add_verdicts();
    out->set_item_id(req->items(i).item_id());
    out->set_consistency(static_cast<int>(v.consistency));
    out->set_raw_reply(v.raw_reply.substr(0, 16 << 10));
    out->set_attempts(v.attempts);
    out->set_referee_prompt(reward::RenderRefereePrompt(responses[i]));
    metrics_->Counter("r1r_judge_verdicts_total", "Referee verdicts by outcome.", {{"verdict", VerdictLabel(v.consistency)}})
        .Increment();
  }
  metrics_->Histogram("r1r_judge_batch_seconds", "Time to judge one batch in seconds.")
      .Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  metrics_->Counter("r1r_judge_items_total", "Responses judged.").Increment(req->items_size());
  return grpc::Status::OK;
}

}  // namespace r1r::judge
