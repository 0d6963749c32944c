#include "services/reward/reward_service.h"

#include <chrono>

#include <absl/strings/str_cat.h>

#include "common/reward/rewards.h"
#include "common/rpc/auth.h"
#include "common/rpc/request_limits.h"
#include "common/rpc/status.h"

namespace r1r::reward {
namespace {

using rpc::Invalid;

constexpr int kMaxTrajectories = rpc::kMaxTrajectoriesPerScore;
constexpr size_t kMaxResponseBytes = rpc::kMaxTextBytes;

grpc::Status Validate(const v1::ScoreTrajectoriesRequest& req) {
  if (req.trajectories_size() == 0 || req.trajectories_size() > kMaxTrajectories) {
    return Invalid(absl::StrCat("trajectories: need 1..", kMaxTrajectories, ", got ", req.trajectories_size()));
  }
  for (int i = 0; i < req.trajectories_size(); ++i) {
    const auto& t = req.trajectories(i);
    const int label = t.preference().label();
    if (label != 1 && label != 2) {
      return Invalid(absl::StrCat("trajectories[", i, "].preference.label: must be 1 or 2, got ", label));
    }
    if (t.response_text().size() > kMaxResponseBytes) {
      return Invalid(absl::StrCat("trajectories[", i, "].response_text: over 64 KiB"));
    }
  }
  const auto& w = req.weights();
  // Bounded, so that a total (accuracy + weighted terms) stays finite: +inf or 3e38 made it inf/NaN.
  constexpr float kMaxWeight = 1000;
  if (w.use_explicit() && (!(w.format_weight() >= 0 && w.format_weight() <= kMaxWeight) ||
                           !(w.consistency_weight() >= 0 && w.consistency_weight() <= kMaxWeight))) {
    return Invalid(absl::StrCat("weights: format_weight and consistency_weight must be in [0, ", kMaxWeight, "], got ",
                                w.format_weight(), " and ", w.consistency_weight()));
  }
  return grpc::Status::OK;
}

}  // namespace

RewardServiceImpl::RewardServiceImpl(JudgeClientOptions judge, std::shared_ptr<grpc::Channel> channel,
                                     obs::Metrics* metrics)
    : judge_(std::move(judge)), stub_(v1::Judge::NewStub(channel)), metrics_(*metrics) {}

grpc::Status RewardServiceImpl::AskJudge(const std::vector<std::string>& responses, std::vector<int>* verdicts,
                                         std::vector<std::string>* raw) {
  const auto start = std::chrono::steady_clock::now();
  for (size_t begin = 0; begin < responses.size(); begin += judge_.batch_size) {
    const size_t end = std::min(responses.size(), begin + judge_.batch_size);
    v1::JudgeBatchRequest req;
    for (size_t i = begin; i < end; ++i) {
      v1::JudgeItem* item = req.add_items();
      item->set_item_id(std::to_string(i));
      item->set_response(responses[i].empty() ? " " : responses[i]);  // the judge rejects empty text
    }
    v1::JudgeBatchResponse resp;
    int attempts = 0;
    grpc::Status s = rpc::CallWithRetry(judge_.client, judge_.retry, [&](grpc::ClientContext& c) {
      ++attempts;
      return stub_->JudgeBatch(&c, req, &resp);
    });
    if (!s.ok()) {
      metrics_.judge_failures.Increment();
      const auto code =
          s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ? grpc::StatusCode::UNAVAILABLE : s.error_code();
      return grpc::Status(code, absl::StrCat("judge at ", judge_.client.target, " failed after ", attempts,
                                             " attempt(s): ", s.error_message()));
    }
    if (resp.verdicts_size() != static_cast<int>(end - begin)) {
      return grpc::Status(grpc::StatusCode::INTERNAL, "judge returned a different number of verdicts than items");
    }
    for (const auto& v : resp.verdicts()) {
      verdicts->push_back(v.consistency());
      raw->push_back(v.raw_reply());
    }
  }
  metrics_.judge_seconds.Observe(rpc::SecondsSince(start));
  return grpc::Status::OK;
}

grpc::Status RewardServiceImpl::ScoreTrajectories(grpc::ServerContext* ctx, const v1::ScoreTrajectoriesRequest* req,
                                                  v1::ScoreTrajectoriesResponse* resp) {
  if (grpc::Status s = rpc::Authorize(ctx); !s.ok()) return s;
  return Score(*req, resp);
}

grpc::Status RewardServiceImpl::Score(const v1::ScoreTrajectoriesRequest& req, v1::ScoreTrajectoriesResponse* resp) {
  if (grpc::Status s = Validate(req); !s.ok()) {
    metrics_.rejected_requests.Increment();
    return s;
  }
  RewardWeights weights;
  if (req.weights().use_explicit()) {
    weights.format = req.weights().format_weight();
    weights.consistency = req.weights().consistency_weight();
  }
  std::vector<std::string> responses;
  for (const auto& t : req.trajectories()) responses.push_back(t.response_text());
  std::vector<int> verdicts;
  std::vector<std::string> raw;
  if (req.weights().skip_judge()) {
    verdicts.assign(responses.size(), 0);
    raw.assign(responses.size(), "");
  } else if (grpc::Status s = AskJudge(responses, &verdicts, &raw); !s.ok()) {
    return s;
  }
  double sum_total = 0, sum_format = 0, sum_result = 0, sum_consistent = 0;
  for (int i = 0; i < req.trajectories_size(); ++i) {
    const auto& t = req.trajectories(i);
    const std::string label = std::to_string(t.preference().label());
    const RewardBreakdown b = ComputeReward(responses[i], label, static_cast<Consistency>(verdicts[i]), weights);
    v1::RewardBreakdown* out = resp->add_rewards();
    out->set_prompt_id(t.prompt_id());
    out->set_format(static_cast<float>(b.format));
    out->set_result(static_cast<float>(b.result));
    out->set_consistency(static_cast<float>(b.consistency));
    out->set_total(static_cast<float>(b.total));
    const auto answer = ExtractTaggedAnswer(responses[i]);
    out->set_parsed_answer(answer == "1" ? 1 : answer == "2" ? 2 : 0);
    out->set_judge_raw(raw[i]);
    sum_total += b.total;
    sum_format += b.format;
    sum_result += b.result;
    sum_consistent += b.consistency > 0 ? 1 : 0;
  }
  const double n = req.trajectories_size();
  metrics_.trajectories.Increment(n);
  metrics_.mean.Set(sum_total / n);
  metrics_.format_rate.Set(sum_format / n);
  metrics_.result_rate.Set(sum_result / n);
  metrics_.consistency_rate.Set(sum_consistent / n);
  return grpc::Status::OK;
}

}  // namespace r1r::reward
