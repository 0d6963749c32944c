#include "common/judge/openai_backend.h"

#include <atomic>
#include <thread>

#include <absl/strings/str_cat.h>
#include <absl/synchronization/mutex.h>
#include <nlohmann/json.hpp>

#include "common/judge/http_client.h"
#include "common/judge/rate_limiter.h"
#include "common/reward/referee.h"

namespace r1r::judge {
namespace {

using nlohmann::json;

class OpenAiBackend : public RefereeBackend {
 public:
  explicit OpenAiBackend(OpenAiOptions o) : o_(std::move(o)), limiter_(o_.rate_limit_qps) {}

  std::string name() const override { return "openai"; }

  absl::StatusOr<std::vector<Verdict>> Assess(const std::vector<std::string>& responses) override {
    auto model = ResolveModel();
    if (!model.ok()) return model.status();
    std::vector<Verdict> verdicts(responses.size());
    std::atomic<size_t> next{0};
    absl::Mutex mu;
    absl::Status first_error;
    auto worker = [&] {
      for (size_t i = next++; i < responses.size(); i = next++) {
        auto v = JudgeOne(responses[i], *model);
        if (!v.ok()) {
          absl::MutexLock lock(&mu);
          if (first_error.ok()) first_error = v.status();
          return;
        }
        verdicts[i] = *v;
      }
    };
    std::vector<std::thread> threads;
    const int n = std::max(1, std::min<int>(o_.concurrency, static_cast<int>(responses.size())));
    for (int t = 0; t < n; ++t) threads.emplace_back(worker);
    for (auto& t : threads) t.join();
    if (!first_error.ok()) return first_error;
    return verdicts;
  }

 private:
  std::vector<std::string> Headers() const {
    std::vector<std::string> h = {"Content-Type: application/json"};
    if (!o_.api_key.empty()) h.push_back("Authorization: Bearer " + o_.api_key);
    return h;
  }

  // Retries transport failures, 429 and 5xx with exponential backoff; other statuses are errors.
  absl::StatusOr<json> Call(const std::string& method, const std::string& path, const std::string& body) {
    absl::Duration backoff = absl::Milliseconds(250);
    absl::Status last;
    for (int attempt = 0; attempt <= o_.transport_retries; ++attempt) {
      if (attempt > 0) {
        absl::SleepFor(backoff);
        backoff = std::min(backoff * 2, absl::Seconds(8));
      }
      limiter_.Acquire();
      auto resp = HttpRequest(method, o_.base_url + path, body, Headers(), o_.timeout);
      if (!resp.ok()) {
        last = resp.status();
        continue;
      }
      if (resp->status == 429 || resp->status >= 500) {
        last = absl::UnavailableError(absl::StrCat(method, " ", o_.base_url, path, ": HTTP ", resp->status));
        continue;
      }
      if (resp->status != 200) {
        return absl::FailedPreconditionError(absl::StrCat(method, " ", o_.base_url, path, ": HTTP ", resp->status, ": ",
                                                          resp->body.substr(0, 300)));
      }
      json j = json::parse(resp->body, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded()) return absl::DataLossError(absl::StrCat(o_.base_url, path, ": reply is not JSON"));
      return j;
    }
    return absl::UnavailableError(
        absl::StrCat("referee endpoint failed after ", o_.transport_retries + 1, " attempts: ", last.message()));
  }

  absl::StatusOr<std::string> ResolveModel() {
    absl::MutexLock lock(&model_mu_);
    if (!model_.empty()) return model_;
    if (!o_.model.empty()) {
      model_ = o_.model;
      return model_;
    }
    auto models = Call("GET", "/models", "");
    if (!models.ok()) return models.status();
    const json& data = (*models)["data"];
    if (!data.is_array() || data.empty() || !data[0].contains("id")) {
      return absl::FailedPreconditionError(absl::StrCat(o_.base_url, "/models lists no model"));
    }
    model_ = data[0]["id"].get<std::string>();
    return model_;
  }

  absl::StatusOr<Verdict> JudgeOne(const std::string& response, const std::string& model) {
    const std::string prompt = reward::RenderRefereePrompt(response);
    json body = {{"model", model},
                 {"messages", json::array({{{"role", "user"}, {"content", prompt}}})},
                 {"temperature", o_.temperature},
                 {"max_tokens", o_.max_tokens}};
    Verdict v;
    std::vector<std::string> replies;
    for (int i = 0; i < reward::kRefereeMaxAttempts; ++i) {
      auto reply = Call("POST", "/chat/completions", body.dump());
      if (!reply.ok()) return reply.status();
      const json& choices = (*reply)["choices"];
      std::string content;
      if (choices.is_array() && !choices.empty() && choices[0]["message"]["content"].is_string()) {
        content = choices[0]["message"]["content"].get<std::string>();
      }
      replies.push_back(content);
      v.raw_reply = content;
      v.attempts = i + 1;
      if (reward::ParseRefereeReply(content).has_value()) break;
    }
    v.consistency = reward::VerdictFromReplies(replies);
    return v;
  }

  const OpenAiOptions o_;
  RateLimiter limiter_;
  absl::Mutex model_mu_;
  std::string model_ ABSL_GUARDED_BY(model_mu_);
};

}  // namespace

std::unique_ptr<RefereeBackend> MakeOpenAiBackend(OpenAiOptions options) {
  return std::make_unique<OpenAiBackend>(std::move(options));
}

}  // namespace r1r::judge
