// Judge service: validates a batch, asks the configured referee backend, reports verdicts.
#pragma once

#include <memory>

#include "common/judge/referee_backend.h"
#include "common/obs/metrics.h"
#include "r1r/v1/judge.grpc.pb.h"

namespace r1r::judge {

class JudgeServiceImpl final : public v1::Judge::Service {
 public:
  // Registers the counters at 0, so that dashboards show 0 rather than no data before the first batch.
  JudgeServiceImpl(std::unique_ptr<RefereeBackend> backend, obs::Metrics* metrics);

  grpc::Status JudgeBatch(grpc::ServerContext* ctx, const v1::JudgeBatchRequest* req,
                          v1::JudgeBatchResponse* resp) override;

 private:
  std::unique_ptr<RefereeBackend> backend_;
  obs::Metrics* metrics_;
};

}  // namespace r1r::judge
