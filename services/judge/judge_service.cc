#include "services/judge/judge_service.h"

#include <chrono>

#include <absl/strings/str_cat.h>

#include "common/reward/referee.h"
#include "common/rpc/auth.h"
#include "common/rpc/handler_guard.h"
#include "common/rpc/request_limits.h"
#include "common/rpc/status.h"

namespace r1r::judge {
namespace {

using rpc::Invalid;

constexpr int kMaxItems = 1024;
constexpr size_t kMaxIdBytes = 256;
constexpr size_t kMaxResponseBytes = rpc::kMaxTextBytes;

grpc::Status Validate(const v1::JudgeBatchRequest& req) {
  if (req.items_size() == 0 || req.items_size() > kMaxItems) {
    return Invalid(absl::StrCat("items: need 1..", kMaxItems, " items, got ", req.items_size()));
  }
  for (int i = 0; i < req.items_size(); ++i) {
    const auto& item = req.items(i);
    if (item.item_id().size() > kMaxIdBytes) {
      return Invalid(absl::StrCat("items[", i, "].item_id: over 256 bytes"));
    }
    if (item.response().empty() || item.response().size() > kMaxResponseBytes) {
      return Invalid(absl::StrCat("items[", i, "].response: must be 1 byte to 64 KiB, got ", item.response().size()));
    }
  }
  return grpc::Status::OK;
}

}  // namespace

JudgeServiceImpl::JudgeServiceImpl(std::unique_ptr<RefereeBackend> backend, obs::Metrics* metrics)
    : backend_(std::move(backend)), metrics_(*metrics) {}

grpc::Status JudgeServiceImpl::JudgeBatch(grpc::ServerContext* ctx, const v1::JudgeBatchRequest* req,
                                          v1::JudgeBatchResponse* resp) {
  return rpc::GuardHandler(ctx, "Judge/JudgeBatch", [&]() -> grpc::Status {
    if (grpc::Status s = rpc::Authorize(ctx); !s.ok()) return s;
    return Assess(*req, resp);
  });
}

grpc::Status JudgeServiceImpl::Assess(const v1::JudgeBatchRequest& req, v1::JudgeBatchResponse* resp) {
  if (grpc::Status s = Validate(req); !s.ok()) {
    metrics_.rejected_requests.Increment();
    return s;
  }
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::string> responses;
  responses.reserve(req.items_size());
  for (const auto& item : req.items()) responses.push_back(item.response());
  auto verdicts = backend_->Assess(responses);
  if (!verdicts.ok()) {
    metrics_.backend_errors.Increment();
    return rpc::ToGrpc(verdicts.status());
  }
  if (verdicts->size() != responses.size()) {  // a backend bug; never index past its answer
    metrics_.backend_errors.Increment();
    return grpc::Status(grpc::StatusCode::INTERNAL,
                        absl::StrCat("referee backend ", backend_->name(), " returned ", verdicts->size(),
                                     " verdicts for ", responses.size(), " items"));
  }
  resp->set_backend(backend_->name());
  for (int i = 0; i < req.items_size(); ++i) {
    const Verdict& v = (*verdicts)[i];
    v1::JudgeVerdict* out = resp->add_verdicts();
    out->set_item_id(req.items(i).item_id());
    out->set_consistency(static_cast<int>(v.consistency));
    out->set_raw_reply(v.raw_reply.substr(0, 16 << 10));
    out->set_attempts(v.attempts);
    out->set_referee_prompt(reward::RenderRefereePrompt(responses[i]));
    metrics_.Verdicts(v.consistency).Increment();
  }
  metrics_.batch_seconds.Observe(rpc::SecondsSince(start));
  metrics_.items.Increment(req.items_size());
  return grpc::Status::OK;
}

}  // namespace r1r::judge
