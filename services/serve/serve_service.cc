#include "services/serve/serve_service.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <absl/strings/str_cat.h>
#include <nlohmann/json.hpp>

#include "common/obs/log.h"
#include "common/rpc/auth.h"
#include "common/rpc/handler_guard.h"
#include "common/rpc/status.h"
#include "common/train/checkpoint_state.h"
#include "services/serve/votes.h"

namespace r1r::serve {
namespace {

using rpc::SecondsSince;

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

std::string ReadText(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A reload keeps requests already encoded valid only if token ids mean the same thing: the same
// tokenizer.json (a published checkpoint carries a byte copy of the one it was trained with).
bool SameVocabulary(train::Policy& a, train::Policy& b) {
  const std::string tokenizer_a = ReadText(std::filesystem::path(a.model_dir()) / "tokenizer.json");
  return a.model().config().text.vocab_size == b.model().config().text.vocab_size &&
         a.end_of_turn_id() == b.end_of_turn_id() && a.pad_id() == b.pad_id() && !tokenizer_a.empty() &&
         tokenizer_a == ReadText(std::filesystem::path(b.model_dir()) / "tokenizer.json");
}

}  // namespace

struct RewardModelServiceImpl::Verdict {
  std::vector<std::string> texts;
  eval::ChoiceVotes tally;
};

// state.json's format belongs to train::CheckpointState.
absl::StatusOr<int64_t> ReadPolicyVersion(const std::string& model_dir) {
  return train::ReadPublishedPolicyVersion(model_dir);
}

absl::StatusOr<std::shared_ptr<RewardModelServiceImpl::LoadedModel>> RewardModelServiceImpl::LoadModel(
    const std::string& dir, const model::ModelOptions& options) {
  auto version = ReadPolicyVersion(dir);
  if (!version.ok()) return version.status();
  auto policy = train::Policy::Load(dir, options);
  if (!policy.ok()) {
    return absl::Status(policy.status().code(), absl::StrCat("loading ", dir, ": ", policy.status().message()));
  }
  auto loaded = std::make_shared<LoadedModel>();
  loaded->policy = *std::move(policy);
  loaded->policy->model().eval();
  loaded->version = *version;
  loaded->dir = dir;
  return loaded;
}

namespace {

// Continuous batching on one loaded policy (kept alive by `keep_alive` while the generator exists).
class PolicyStepGenerator final : public StepGenerator {
 public:
  PolicyStepGenerator(std::shared_ptr<void> keep_alive, train::Policy* policy, std::function<bool()> is_current,
                      int max_rows, bool cuda_graphs)
      : keep_alive_(std::move(keep_alive)),
        policy_(policy),
        is_current_(std::move(is_current)),
        engine_(policy->model(), Options(*policy, max_rows, cuda_graphs)) {}
  absl::StatusOr<int64_t> Add(const train::EncodedPrompt& prompt, const model::SamplingParams& sampling) override {
    return engine_.Add(policy_->MakeRequest(prompt, sampling));
  }
  absl::StatusOr<std::vector<std::pair<int64_t, model::GenerationResult>>> Step() override { return engine_.Step(); }
  bool idle() const override { return engine_.idle(); }
  bool current() const override { return is_current_(); }

 private:
  static model::GenerateOptions Options(const train::Policy& policy, int max_rows, bool cuda_graphs) {
    model::GenerateOptions o;
    o.pad_token_id = policy.pad_id();
    o.max_batch_rows = max_rows;
    o.cuda_graphs = cuda_graphs;
    return o;
  }
  std::shared_ptr<void> keep_alive_;
  train::Policy* policy_;
  std::function<bool()> is_current_;
  model::GenerationEngine engine_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<RewardModelServiceImpl>> RewardModelServiceImpl::Create(const ServeOptions& options,
                                                                                       obs::Metrics* metrics) {
  std::unique_ptr<RewardModelServiceImpl> s(new RewardModelServiceImpl(options, ServeMetrics::From(metrics)));
  auto loaded = LoadModel(options.model_dir, options.model);
  if (!loaded.ok()) {
    return absl::Status(loaded.status().code(), absl::StrCat("--model-dir: ", loaded.status().message()));
  }
  s->model_ = *std::move(loaded);
  RewardModelServiceImpl* self = s.get();
  if (options.batching.continuous) {
    // A generator runs on the checkpoint current when it starts and drains after a reload; the
    // vocabulary is the same across reloads.
    const int max_rows = options.batching.max_batch;
    const bool cuda_graphs = options.cuda_graphs;
    s->batcher_ = std::make_unique<GenerationBatcher>(
        [self, max_rows, cuda_graphs]() -> absl::StatusOr<std::unique_ptr<StepGenerator>> {
          std::shared_ptr<LoadedModel> model = self->Current();
          train::Policy* policy = model->policy.get();
          const LoadedModel* raw = model.get();
          return std::unique_ptr<StepGenerator>(new PolicyStepGenerator(
              std::move(model), policy, [self, raw] { return self->Current().get() == raw; }, max_rows,
              cuda_graphs));
        },
        options.batching, s->metrics_);
  } else {
    s->batcher_ = std::make_unique<GenerationBatcher>(
        [self](const std::vector<const train::EncodedPrompt*>& prompts,
               const std::vector<model::SamplingParams>& sampling) {
          // Each batch runs on the checkpoint current when it starts; reloads keep the vocabulary.
          const std::shared_ptr<LoadedModel> model = self->Current();
          return model->policy->Generate(prompts, sampling);
        },
        options.batching, s->metrics_);
  }
  if (s->metrics_) s->metrics_->policy_version.Set(static_cast<double>(s->policy_version()));
  if (options.reload_poll > absl::ZeroDuration()) s->poller_ = std::thread([self] { self->PollForNewVersions(); });
  return s;
}

RewardModelServiceImpl::~RewardModelServiceImpl() {
  if (batcher_) Stop();
}

void RewardModelServiceImpl::Stop() {
  {
    absl::MutexLock lock(&stop_mu_);
    stopping_ = true;
  }
  if (poller_.joinable()) poller_.join();
  batcher_->Stop();
}

std::shared_ptr<RewardModelServiceImpl::LoadedModel> RewardModelServiceImpl::Current() const {
  absl::MutexLock lock(&model_mu_);
  return model_;
}

void RewardModelServiceImpl::PollForNewVersions() {
  absl::MutexLock lock(&stop_mu_);
  while (!stop_mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.reload_poll)) {
    stop_mu_.Unlock();
    // A directory being replaced, or a half-written one, fails to read or load: try again next time.
    auto on_disk = ReadPolicyVersion(options_.model_dir);
    if (on_disk.ok() && *on_disk > policy_version()) {
      auto reloaded = DoReload(v1::ReloadRequest());
      if (reloaded.ok()) {
        spdlog::info("reloaded {}: policy version {} -> {} in {:.2f} s", reloaded->model_dir(),
                     reloaded->previous_version(), reloaded->policy_version(), reloaded->seconds());
      } else {
        spdlog::warn("reload of {} failed, still serving version {}: {}", options_.model_dir, policy_version(),
                     reloaded.status().ToString());
      }
      CountRequest("reload", reloaded.status(), reloaded.ok() ? reloaded->seconds() : 0);
    }
    stop_mu_.Lock();
  }
}

absl::StatusOr<v1::ReloadResponse> RewardModelServiceImpl::DoReload(const v1::ReloadRequest& req) {
  const auto start = std::chrono::steady_clock::now();
  if (req.model_dir().size() > 4096) return absl::InvalidArgumentError("model_dir: over 4096 bytes");
  const std::string dir = req.model_dir().empty() ? options_.model_dir : req.model_dir();
  if (!std::filesystem::is_directory(dir)) return absl::NotFoundError(absl::StrCat("model_dir: no directory ", dir));
  absl::MutexLock reload(&reload_mu_);
  const std::shared_ptr<LoadedModel> previous = Current();
  auto version = ReadPolicyVersion(dir);
  if (!version.ok()) return version.status();
  if (*version < previous->version && !req.allow_older()) {
    return absl::FailedPreconditionError(absl::StrCat("model_dir: policy version ", *version, " is older than the ",
                                                      previous->version, " being served; set allow_older to roll back"));
  }
  auto loaded = LoadModel(dir, options_.model);  // the old checkpoint serves meanwhile
  if (!loaded.ok()) return loaded.status();
  if (!SameVocabulary(*previous->policy, *(*loaded)->policy)) {
    return absl::FailedPreconditionError(absl::StrCat("model_dir: ", dir, " has another vocabulary than the model "
                                                      "being served; start a new r1r-serve for a different model"));
  }
  {
    absl::MutexLock lock(&model_mu_);
    model_ = *loaded;
  }
  const double seconds = SecondsSince(start);
  if (metrics_) metrics_->policy_version.Set(static_cast<double>((*loaded)->version));
  v1::ReloadResponse resp;
  resp.set_policy_version((*loaded)->version);
  resp.set_previous_version(previous->version);
  resp.set_model_dir(dir);
  resp.set_seconds(seconds);
  return resp;
}

void RewardModelServiceImpl::CountRequest(const char* rpc, const absl::Status& status, double seconds) {
  if (metrics_ == nullptr) return;
  metrics_->CountRequest(rpc, OutcomeLabel(status));
  if (status.ok()) metrics_->ObserveSeconds(rpc, seconds);
}

absl::StatusOr<std::optional<train::EncodedPrompt>> RewardModelServiceImpl::ProcessRequestImage(
    LoadedModel& model, bool has_image, const v1::ImageInput& image) const {
  if (!has_image) return std::optional<train::EncodedPrompt>();
  auto rgb = DecodeRequestImage(image, options_.limits);
  if (!rgb.ok()) return rgb.status();
  if (!rgb->has_value()) return std::optional<train::EncodedPrompt>();
  auto processed = model.policy->encoder().ProcessImage(**rgb);
  if (!processed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("image: ", processed.status().message()));
  }
  return std::optional<train::EncodedPrompt>(*std::move(processed));
}

absl::StatusOr<train::EncodedPrompt> RewardModelServiceImpl::EncodePrompt(LoadedModel& model,
                                                                        const train::PromptInput& input,
                                                                        const train::EncodedPrompt* image) const {
  train::PromptEncoder& encoder = model.policy->encoder();
  auto encoded = image ? encoder.Encode(input, *image) : encoder.Encode(input);
  if (!encoded.ok()) return encoded.status();
  if (static_cast<int64_t>(encoded->ids.size()) > options_.max_prompt_tokens) {
    return absl::InvalidArgumentError(absl::StrCat("question: the prompt is ", encoded->ids.size(),
                                                   " tokens, over this server's limit of ", options_.max_prompt_tokens));
  }
  return encoded;
}

absl::StatusOr<std::vector<RewardModelServiceImpl::Verdict>> RewardModelServiceImpl::SampleVerdicts(
    LoadedModel& model, const std::vector<train::EncodedPrompt>& prompts, int votes, double temperature, uint64_t seed,
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
  std::vector<Verdict> sampled(prompts.size());
  for (size_t p = 0; p < prompts.size(); ++p) {
    for (int k = 0; k < samples; ++k) {
      sampled[p].texts.push_back(model.policy->Decode((*results)[p * static_cast<size_t>(samples) + k].token_ids));
    }
    sampled[p].tally = TallyVotes(sampled[p].texts);
  }
  return sampled;
}

absl::StatusOr<v1::CompareResponse> RewardModelServiceImpl::DoCompare(const v1::CompareRequest& req,
                                                                     const std::function<bool()>& cancelled) {
  const auto start = std::chrono::steady_clock::now();
  if (absl::Status s = CheckCompareRequest(req, options_.limits); !s.ok()) return s;
  const std::shared_ptr<LoadedModel> model = Current();
  auto image = ProcessRequestImage(*model, req.has_image(), req.image());
  if (!image.ok()) return image.status();
  train::PromptInput input{req.question(), req.response1(), req.response2(), ""};
  auto prompt = EncodePrompt(*model, input, image->has_value() ? &**image : nullptr);
  if (!prompt.ok()) return prompt.status();
  std::vector<train::EncodedPrompt> prompts;
  prompts.push_back(*std::move(prompt));
  auto sampled =
      SampleVerdicts(*model, prompts, req.votes(), req.temperature(), req.seed(), req.max_new_tokens(), cancelled);
  if (!sampled.ok()) return sampled.status();
  const Verdict& j = sampled->front();
  v1::CompareResponse resp;
  resp.set_choice(j.tally.choice);
  resp.set_votes_for_1(j.tally.votes_for_1);
  resp.set_votes_for_2(j.tally.votes_for_2);
  resp.set_unparsed(j.tally.unparsed);
  for (const std::string& text : j.texts) resp.add_reasoning(text);
  resp.set_policy_version(model->version);
  resp.set_seconds(SecondsSince(start));
  return resp;
}

absl::StatusOr<v1::RankResponse> RewardModelServiceImpl::DoRank(const v1::RankRequest& req,
                                                               const std::function<bool()>& cancelled) {
  if (absl::Status s = CheckRankRequest(req, options_.limits); !s.ok()) return s;
  const std::shared_ptr<LoadedModel> model = Current();
  auto image = ProcessRequestImage(*model, req.has_image(), req.image());
  if (!image.ok()) return image.status();
  const std::vector<std::pair<int, int>> pairs = AllOrderedPairs(req.responses_size());
  std::vector<train::EncodedPrompt> prompts;
  prompts.reserve(pairs.size());
  for (const auto& [a, b] : pairs) {
    train::PromptInput input{req.question(), req.responses(a), req.responses(b), ""};
    auto prompt = EncodePrompt(*model, input, image->has_value() ? &**image : nullptr);
    if (!prompt.ok()) return prompt.status();
    prompts.push_back(*std::move(prompt));
  }
  auto sampled =
      SampleVerdicts(*model, prompts, req.votes(), req.temperature(), req.seed(), /*max_new_tokens=*/0, cancelled);
  if (!sampled.ok()) return sampled.status();
  std::vector<PairVerdict> verdicts;
  verdicts.reserve(pairs.size());
  for (size_t i = 0; i < pairs.size(); ++i) {
    verdicts.push_back(PairVerdict{pairs[i].first, pairs[i].second, (*sampled)[i].tally.choice});
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
  return rpc::GuardHandler(ctx, "RewardModel/Compare", [&]() -> grpc::Status {
    if (auto s = rpc::Authorize(ctx); !s.ok()) return s;
    const auto start = std::chrono::steady_clock::now();
    auto result = DoCompare(*req, [ctx] { return ctx->IsCancelled(); });
    CountRequest("compare", result.status(), SecondsSince(start));
    if (!result.ok()) return rpc::ToGrpc(result.status());
    *resp = *std::move(result);
    return grpc::Status::OK;
  });
}

grpc::Status RewardModelServiceImpl::Rank(grpc::ServerContext* ctx, const v1::RankRequest* req,
                                          v1::RankResponse* resp) {
  return rpc::GuardHandler(ctx, "RewardModel/Rank", [&]() -> grpc::Status {
    if (auto s = rpc::Authorize(ctx); !s.ok()) return s;
    const auto start = std::chrono::steady_clock::now();
    auto result = DoRank(*req, [ctx] { return ctx->IsCancelled(); });
    CountRequest("rank", result.status(), SecondsSince(start));
    if (!result.ok()) return rpc::ToGrpc(result.status());
    *resp = *std::move(result);
    return grpc::Status::OK;
  });
}

grpc::Status RewardModelServiceImpl::Reload(grpc::ServerContext* ctx, const v1::ReloadRequest* req,
                                            v1::ReloadResponse* resp) {
  return rpc::GuardHandler(ctx, "RewardModel/Reload", [&]() -> grpc::Status {
    if (auto s = rpc::Authorize(ctx); !s.ok()) return s;
    auto result = DoReload(*req);
    CountRequest("reload", result.status(), result.ok() ? result->seconds() : 0);
    if (!result.ok()) return rpc::ToGrpc(result.status());
    spdlog::info("reloaded {}: policy version {} -> {}", result->model_dir(), result->previous_version(),
                 result->policy_version());
    *resp = *std::move(result);
    return grpc::Status::OK;
  });
}

}  // namespace r1r::serve
