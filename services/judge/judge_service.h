// Judge service: validates a batch, asks the configured referee backend, reports verdicts.
#pragma once

#include <memory>

#include "common/judge/referee_backend.h"
#include "common/obs/metrics.h"
#include "r1r/v1/judge.grpc.pb.h"
#include "services/judge/judge_metrics.h"

namespace r1r::judge {

class JudgeServiceImpl final : public v1::Judge::Service {
 public:
  // Registers its metrics in `metrics` (not null) once, here: dashboards show 0 rather than no data
  // before the first batch.
  JudgeServiceImpl(std::unique_ptr<RefereeBackend> backend, obs::Metrics* metrics);

  grpc::Status JudgeBatch(grpc::ServerContext* ctx, const v1::JudgeBatchRequest* req,
                          v1::JudgeBatchResponse* resp) override;

  // The work behind the RPC without authorization (tests): INVALID_ARGUMENT naming the field for a bad
  // batch; the backend's own error (UNAVAILABLE, DEADLINE_EXCEEDED, ...) when it cannot answer at all.
  grpc::Status Assess(const v1::JudgeBatchRequest& req, v1::JudgeBatchResponse* resp);

 private:
  std::unique_ptr<RefereeBackend> backend_;
  JudgeMetrics metrics_;
};

}  // namespace r1r::judge
