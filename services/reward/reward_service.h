// RewardAggregator: format, result and consistency per trajectory; the referee is the judge
// service, called in batches with deadlines and retries. If the judge stays unreachable the
// request fails with UNAVAILABLE — it never scores silently.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/obs/metrics.h"
#include "common/rpc/client.h"
#include "r1r/v1/judge.grpc.pb.h"
#include "r1r/v1/reward.grpc.pb.h"
#include "services/reward/reward_metrics.h"

namespace r1r::reward {

struct JudgeClientOptions {
  rpc::ClientOptions client;      // target, token, per-call deadline
  rpc::RetryPolicy retry;
  int batch_size = 256;           // items per JudgeBatch call
};

class RewardServiceImpl final : public v1::RewardAggregator::Service {
 public:
  // Registers its metrics in `metrics` (not null) once, here.
  RewardServiceImpl(JudgeClientOptions judge, std::shared_ptr<grpc::Channel> channel, obs::Metrics* metrics);

  grpc::Status ScoreTrajectories(grpc::ServerContext* ctx, const v1::ScoreTrajectoriesRequest* req,
                                 v1::ScoreTrajectoriesResponse* resp) override;

  // The work behind the RPC without authorization (tests): INVALID_ARGUMENT naming the field for a bad
  // request, UNAVAILABLE when the judge cannot be reached after retries.
  grpc::Status Score(const v1::ScoreTrajectoriesRequest& req, v1::ScoreTrajectoriesResponse* resp);

 private:
  // Verdicts (+1/0/-1) and raw replies for `responses`, in order.
  grpc::Status AskJudge(const std::vector<std::string>& responses, std::vector<int>* verdicts,
                        std::vector<std::string>* raw);

  JudgeClientOptions judge_;
  std::unique_ptr<v1::Judge::Stub> stub_;
  RewardMetrics metrics_;
};

}  // namespace r1r::reward
