#include "services/serve/serve_service.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <absl/strings/str_cat.h>
#include <nlohmann/json.hpp>

#include "common/rpc/auth.h"
#include "common/rpc/status.h"
#include "services/serve/votes.h"

namespace r1r::serve {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

const char* OutcomeLabel(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kOk: return "ok";
    case absl::StatusCode::kInvalidArgument: return "invalid";
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kDeadlineExceeded: return "cancelled";
    case absl::StatusCode::kUnavailable: return "unavailable";
    default: return "error";
  }
}

}  // namespace

struct RewardModelServiceImpl::Judged {
  std::vector<std::string> texts;
  VoteTally tally;
};

absl::StatusOr<int64_t> ReadPolicyVersion(const std::string& model_dir) {
  const std::filesystem::path path = std::filesystem::path(model_dir) / "state.json";
  if (!std::filesystem::exists(path)) return 0;
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) return absl::FailedPreconditionError(absl::StrCat("cannot read ", path.string()));
  const nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::FailedPreconditionError(absl::StrCat(path.string(), " is not a JSON object"));
  }
  for (const char* key : {"policy_version", "version"}) {
    if (j.contains(key) && j[key].is_number_integer()) return j[key].get<int64_t>();
  }
  return 0;
}

absl::StatusOr<std::unique_ptr<RewardModelServiceImpl>> RewardModelServiceImpl::Create(const ServeOptions& options,
                                                                                       obs::Metrics* metrics) {
  std::unique_ptr<RewardModelServiceImpl> s(new RewardModelServiceImpl(options, ServeMetrics::From(metrics)));
  auto version = ReadPolicyVersion(options.model_dir);
  if (!version.ok()) return version.status();
  s->policy_version_ = *version;
  auto policy = train::Policy::Load(options.model_dir, options.model);
  if (!policy.ok()) {
    return absl::Status(policy.status().code(),
                        absl::StrCat("loading --model-dir ", options.model_dir, ": ", policy.status().message()));
  }
  s->policy_ = *std::move(policy);
  s->policy_->model().eval();
  train::Policy* p = s->policy_.get();
  s->batcher_ = std::make_unique<GenerationBatcher>(
      [p](const std::vector<const train::EncodedPrompt*>& prompts, const std::vector<model::SamplingParams>& sampling) {
        return p->Generate(prompts, sampling);
      },
      options.batching, s->metrics_);
  if (s->metrics_) s->metrics_->policy_version.Set(static_cast<double>(*version));
  return s;
}

RewardModelServiceImpl::~RewardModelServiceImpl() {
  if (batcher_) batcher_->Stop();
}

void RewardModelServiceImpl::CountRequest(const char* rpc, const absl::Status& status, double seconds) {
  if (metrics_ == nullptr) return;
  metrics_->CountRequest(rpc, OutcomeLabel(status));
  if (status.ok()) metrics_->ObserveSeconds(rpc, seconds);
}

absl::StatusOr<std::optional<train::EncodedPrompt>> RewardModelServiceImpl::ProcessRequestImage(
    bool has_image, const v1::ImageInput& image) const {
  if (!has_image) return std::optional<train::EncodedPrompt>();
  auto rgb = DecodeRequestImage(image, options_.limits);
  if (!rgb.ok()) return rgb.status();
  if (!rgb->has_value()) return std::optional<train::EncodedPrompt>();
  auto processed = policy_->encoder().ProcessImage(**rgb);
  if (!processed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("image: ", processed.status().message()));
  }
  return std::optional<train::EncodedPrompt>(*std::move(processed));
}

absl::StatusOr<train::EncodedPrompt> RewardModelServiceImpl::EncodePrompt(const train::PromptInput& input,
                                                                        const train::EncodedPrompt* image) const {
  auto encoded = image ? policy_->encoder().Encode(input, *image) : policy_->encoder().Encode(input);
  if (!encoded.ok()) return encoded.status();
  if (static_cast<int64_t>(encoded->ids.size()) > options_.max_prompt_tokens) {
    return absl::InvalidArgumentError(absl::StrCat("question: the prompt is ", encoded->ids.size(),
                                                   " tokens, over this server's limit of ", options_.max_prompt_tokens));
  }
  return encoded;
}

absl::StatusOr<std::vector<RewardModelServiceImpl::Judged>> RewardModelServiceImpl::Judge(
    const std::vector<train::EncodedPrompt>& prompts, int votes, double temperature, uint64_t seed,
    int max_new_tokens, const std::function<bool()>& cancelled) {
  const auto [samples, t] = VotePlan(votes, temperature);
  std::vector<GenerationJob> jobs;
  jobs.reserve(prompts.size() * static_cast<size_t>(samples));
  for (const train::EncodedPrompt& prompt : prompts) {
    for (int k = 0; k < samples; ++k) {
      GenerationJob job;
      job.prompt = &prompt;
      job.sampling.temperature = t;
      job.sampling.seed = seed + static_cast<uint64_t>(k);
      job.sampling.max_new_tokens = max_new_tokens > 0 ? max_new_tokens : options_.default_max_new_tokens;
      jobs.push_back(std::move(job));
    }
  }
  auto results = batcher_->Run(jobs, cancelled);
  if (!results.ok()) return results.status();
  std::vector<Judged> judged(prompts.size());
  for (size_t p = 0; p < prompts.size(); ++p) {
    for (int k = 0; k < samples; ++k) {
      judged[p].texts.push_back(policy_->Decode((*results)[p * static_cast<size_t>(samples) + k].token_ids));
    }
    judged[p].tally = TallyVotes(judged[p].texts);
  }
  return judged;
}

absl::StatusOr<v1::CompareResponse> RewardModelServiceImpl::DoCompare(const v1::CompareRequest& req,
                                                                     const std::function<bool()>& cancelled) {
  const auto start = std::chrono::steady_clock::now();
  if (absl::Status s = CheckCompareRequest(req, options_.limits); !s.ok()) return s;
  auto image = ProcessRequestImage(req.has_image(), req.image());
  if (!image.ok()) return image.status();
  train::PromptInput input{req.question(), req.response1(), req.response2(), ""};
  auto prompt = EncodePrompt(input, image->has_value() ? &**image : nullptr);
  if (!prompt.ok()) return prompt.status();
  std::vector<train::EncodedPrompt> prompts;
  prompts.push_back(*std::move(prompt));
  auto judged = Judge(prompts, req.votes(), req.temperature(), req.seed(), req.max_new_tokens(), cancelled);
  if (!judged.ok()) return judged.status();
  const Judged& j = judged->front();
  v1::CompareResponse resp;
  resp.set_choice(j.tally.choice);
  resp.set_votes_for_1(j.tally.votes_for_1);
  resp.set_votes_for_2(j.tally.votes_for_2);
  resp.set_unparsed(j.tally.unparsed);
  for (const std::string& text : j.texts) resp.add_reasoning(text);
  resp.set_policy_version(policy_version_);
  resp.set_seconds(SecondsSince(start));
  return resp;
}

absl::StatusOr<v1::RankResponse> RewardModelServiceImpl::DoRank(const v1::RankRequest& req,
                                                               const std::function<bool()>& cancelled) {
  if (absl::Status s = CheckRankRequest(req, options_.limits); !s.ok()) return s;
  auto image = ProcessRequestImage(req.has_image(), req.image());
  if (!image.ok()) return image.status();
  const std::vector<std::pair<int, int>> pairs = AllOrderedPairs(req.responses_size());
  std::vector<train::EncodedPrompt> prompts;
  prompts.reserve(pairs.size());
  for (const auto& [a, b] : pairs) {
    train::PromptInput input{req.question(), req.responses(a), req.responses(b), ""};
    auto prompt = EncodePrompt(input, image->has_value() ? &**image : nullptr);
    if (!prompt.ok()) return prompt.status();
    prompts.push_back(*std::move(prompt));
  }
  auto judged = Judge(prompts, req.votes(), req.temperature(), req.seed(), /*max_new_tokens=*/0, cancelled);
  if (!judged.ok()) return judged.status();
  std::vector<PairVerdict> verdicts;
  verdicts.reserve(pairs.size());
  for (size_t i = 0; i < pairs.size(); ++i) {
    verdicts.push_back(PairVerdict{pairs[i].first, pairs[i].second, (*judged)[i].tally.choice});
  }
  const Ranking ranking = RankFromVerdicts(req.responses_size(), verdicts);
  v1::RankResponse resp;
  for (int i : ranking.order) resp.add_order(i);
  for (int w : ranking.wins) resp.add_wins(w);
  resp.set_best(ranking.best);
  return resp;
}

grpc::Status RewardModelServiceImpl::Compare(grpc::ServerContext* ctx, const v1::CompareRequest* req,
                                             v1::CompareResponse* resp) {
  if (auto s = rpc::Authorize(ctx); !s.ok()) return s;
  const auto start = std::chrono::steady_clock::now();
  auto result = DoCompare(*req, [ctx] { return ctx->IsCancelled(); });
  CountRequest("compare", result.status(), SecondsSince(start));
  if (!result.ok()) return rpc::ToGrpc(result.status());
  *resp = *std::move(result);
  return grpc::Status::OK;
}

grpc::Status RewardModelServiceImpl::Rank(grpc::ServerContext* ctx, const v1::RankRequest* req,
                                          v1::RankResponse* resp) {
  if (auto s = rpc::Authorize(ctx); !s.ok()) return s;
  const auto start = std::chrono::steady_clock::now();
  auto result = DoRank(*req, [ctx] { return ctx->IsCancelled(); });
  CountRequest("rank", result.status(), SecondsSince(start));
  if (!result.ok()) return rpc::ToGrpc(result.status());
  *resp = *std::move(result);
  return grpc::Status::OK;
}

}  // namespace r1r::serve
