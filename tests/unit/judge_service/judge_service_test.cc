// The referee service's handler called directly: validation names the field, verdicts come back in item
// order with their ids, and a backend that cannot answer fails the batch with its own code.
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/metric_family.h>

#include "common/judge/referee_backend.h"
#include "common/obs/metrics.h"
#include "services/judge/judge_service.h"

namespace r1r::judge {
namespace {

using ::testing::HasSubstr;

constexpr char kConsistent[] =
    "<think>Response 1 names the right count.\nSo response 1 is better.</think><answer>1</answer>";
constexpr char kInconsistent[] =
    "<think>Response 1 miscounts.\nTherefore response 2 is better.</think><answer>1</answer>";

// A referee that cannot be asked at all (an endpoint down after its retries).
class UnreachableBackend : public RefereeBackend {
 public:
  std::string name() const override { return "unreachable"; }
  absl::StatusOr<std::vector<Verdict>> Assess(const std::vector<std::string>&) override {
    return absl::UnavailableError("endpoint http://referee:8000/v1 refused the connection");
  }
};

// A referee with a bug: one verdict short.
class ShortBackend : public RefereeBackend {
 public:
  std::string name() const override { return "short"; }
  absl::StatusOr<std::vector<Verdict>> Assess(const std::vector<std::string>& responses) override {
    return std::vector<Verdict>(responses.size() - 1);
  }
};

v1::JudgeBatchRequest Batch(const std::vector<std::string>& responses) {
  v1::JudgeBatchRequest r;
  for (size_t i = 0; i < responses.size(); ++i) {
    v1::JudgeItem* item = r.add_items();
    item->set_item_id("id-" + std::to_string(i));
    item->set_response(responses[i]);
  }
  return r;
}

// The sum of a counter's series with these labels; -1 when no such metric is registered.
double CounterValue(obs::Metrics& m, const std::string& name, const std::string& verdict = "") {
  for (const prometheus::MetricFamily& family : m.registry().Collect()) {
    if (family.name != name) continue;
    double sum = 0;
    for (const prometheus::ClientMetric& metric : family.metric) {
      bool match = verdict.empty();
      for (const auto& label : metric.label) match |= label.name == "verdict" && label.value == verdict;
      if (match) sum += metric.counter.value;
    }
    return sum;
  }
  return -1;
}

TEST(judge_service, EveryMetricExistsAtStartUp) {
  obs::Metrics metrics("judge");
  JudgeServiceImpl service(MakeRuleBackend(), &metrics);
  for (const char* name : {"r1r_judge_rejected_requests_total", "r1r_judge_backend_errors_total",
                           "r1r_judge_items_total"}) {
    EXPECT_EQ(CounterValue(metrics, name), 0) << name;
  }
  for (const char* verdict : {"consistent", "inconsistent", "unknown"}) {
    EXPECT_EQ(CounterValue(metrics, "r1r_judge_verdicts_total", verdict), 0) << verdict;
  }
}

TEST(judge_service, BadBatchesAreInvalidAndNameTheField) {
  obs::Metrics metrics("judge");
  JudgeServiceImpl service(MakeRuleBackend(), &metrics);
  struct Case {
    v1::JudgeBatchRequest request;
    std::string message;
  };
  std::vector<Case> cases;
  cases.push_back({v1::JudgeBatchRequest(), "items: need 1..1024 items, got 0"});
  cases.push_back({Batch(std::vector<std::string>(1025, kConsistent)), "items: need 1..1024 items, got 1025"});
  cases.push_back({Batch({kConsistent, ""}), "items[1].response: must be 1 byte to 64 KiB, got 0"});
  cases.push_back({Batch({std::string((64 << 10) + 1, 'x')}), "items[0].response: must be 1 byte to 64 KiB, got 65537"});
  v1::JudgeBatchRequest long_id = Batch({kConsistent});
  long_id.mutable_items(0)->set_item_id(std::string(257, 'i'));
  cases.push_back({long_id, "items[0].item_id: over 256 bytes"});
  for (const Case& c : cases) {
    v1::JudgeBatchResponse resp;
    const grpc::Status s = service.Assess(c.request, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.message;
    EXPECT_THAT(s.error_message(), HasSubstr(c.message));
    EXPECT_EQ(resp.verdicts_size(), 0);
  }
  EXPECT_EQ(CounterValue(metrics, "r1r_judge_rejected_requests_total"), 5);
  EXPECT_EQ(CounterValue(metrics, "r1r_judge_items_total"), 0);
}

TEST(judge_service, VerdictsComeBackInItemOrderWithTheirIds) {
  obs::Metrics metrics("judge");
  JudgeServiceImpl service(MakeRuleBackend(), &metrics);
  v1::JudgeBatchResponse resp;
  ASSERT_TRUE(service.Assess(Batch({kInconsistent, kConsistent, kConsistent}), &resp).ok());
  EXPECT_EQ(resp.backend(), "rule");
  ASSERT_EQ(resp.verdicts_size(), 3);
  EXPECT_EQ(resp.verdicts(0).item_id(), "id-0");
  EXPECT_EQ(resp.verdicts(0).consistency(), -1);
  EXPECT_EQ(resp.verdicts(2).item_id(), "id-2");
  EXPECT_EQ(resp.verdicts(2).consistency(), 1);
  EXPECT_THAT(resp.verdicts(1).referee_prompt(), HasSubstr("So response 1 is better."));
  EXPECT_EQ(CounterValue(metrics, "r1r_judge_items_total"), 3);
  EXPECT_EQ(CounterValue(metrics, "r1r_judge_verdicts_total", "consistent"), 2);
  EXPECT_EQ(CounterValue(metrics, "r1r_judge_verdicts_total", "inconsistent"), 1);
}

TEST(judge_service, ABackendThatCannotAnswerFailsTheBatchWithItsCode) {
  obs::Metrics metrics("judge");
  JudgeServiceImpl service(std::make_unique<UnreachableBackend>(), &metrics);
  v1::JudgeBatchResponse resp;
  const grpc::Status s = service.Assess(Batch({kConsistent}), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);  // r1r-reward retries it, then fails its request
  EXPECT_THAT(s.error_message(), HasSubstr("referee:8000"));
  EXPECT_EQ(resp.verdicts_size(), 0);
  EXPECT_EQ(CounterValue(metrics, "r1r_judge_backend_errors_total"), 1);
}

TEST(judge_service, ABackendShortOfVerdictsIsAnInternalErrorNotACrash) {
  obs::Metrics metrics("judge");
  JudgeServiceImpl service(std::make_unique<ShortBackend>(), &metrics);
  v1::JudgeBatchResponse resp;
  const grpc::Status s = service.Assess(Batch({kConsistent, kInconsistent}), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_THAT(s.error_message(), HasSubstr("returned 1 verdicts for 2 items"));
  EXPECT_EQ(CounterValue(metrics, "r1r_judge_backend_errors_total"), 1);
}

}  // namespace
}  // namespace r1r::judge
