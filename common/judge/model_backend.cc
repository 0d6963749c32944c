#include "common/judge/model_backend.h"

#include <torch/torch.h>

#include <absl/strings/str_cat.h>
#include <absl/synchronization/mutex.h>

#include "common/reward/referee.h"
#include "common/tokenizer/chat_template.h"
#include "common/train/policy.h"

namespace r1r::judge {
namespace {

class ModelBackend : public RefereeBackend {
 public:
  ModelBackend(std::unique_ptr<train::Policy> policy, ModelBackendOptions o) : policy_(std::move(policy)), o_(o) {}

  std::string name() const override { return "model"; }

  absl::StatusOr<std::vector<Verdict>> Assess(const std::vector<std::string>& responses) override {
    absl::MutexLock lock(&mu_);  // one model: batches run one after another
    std::vector<train::EncodedPrompt> prompts(responses.size());
    for (size_t i = 0; i < responses.size(); ++i) {
      tokenizer::TemplateMessage user =
          tokenizer::TemplateMessage::FromText("user", reward::RenderRefereePrompt(responses[i]));
      auto ids = tokenizer::EncodeChat(policy_->encoder().tokenizer(), {user}, /*add_generation_prompt=*/true);
      if (!ids.ok()) return ids.status();
      prompts[i].ids.assign(ids->begin(), ids->end());
    }
    std::vector<Verdict> verdicts(responses.size());
    std::vector<std::vector<std::string>> replies(responses.size());
    std::vector<size_t> pending(responses.size());
    for (size_t i = 0; i < pending.size(); ++i) pending[i] = i;
    for (int attempt = 0; attempt < reward::kRefereeMaxAttempts && !pending.empty(); ++attempt) {
      std::vector<size_t> still;
      for (size_t begin = 0; begin < pending.size(); begin += static_cast<size_t>(o_.batch_size)) {
        const size_t end = std::min(pending.size(), begin + static_cast<size_t>(o_.batch_size));
        std::vector<const train::EncodedPrompt*> batch;
        std::vector<model::SamplingParams> sampling;
        for (size_t k = begin; k < end; ++k) {
          batch.push_back(&prompts[pending[k]]);
          model::SamplingParams s;
          s.temperature = o_.temperature;
          s.max_new_tokens = o_.max_tokens;
          s.seed = pending[k] * 7919 + static_cast<uint64_t>(attempt);
          sampling.push_back(s);
        }
        auto out = policy_->Generate(batch, sampling);
        if (!out.ok()) return out.status();
        for (size_t k = begin; k < end; ++k) {
          const size_t i = pending[k];
          const std::string reply = policy_->Decode((*out)[k - begin].token_ids);
          replies[i].push_back(reply);
          verdicts[i].raw_reply = reply;
          verdicts[i].attempts = attempt + 1;
          if (!reward::ParseRefereeReply(reply).has_value()) still.push_back(i);
        }
      }
      pending = std::move(still);
    }
    for (size_t i = 0; i < responses.size(); ++i) verdicts[i].consistency = reward::VerdictFromReplies(replies[i]);
    return verdicts;
  }

 private:
  absl::Mutex mu_;
  std::unique_ptr<train::Policy> policy_;
  ModelBackendOptions o_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<RefereeBackend>> MakeModelBackend(const ModelBackendOptions& o) {
  if (o.model_dir.empty()) return absl::InvalidArgumentError("the model referee needs a model directory (--endpoint)");
  if (o.batch_size < 1) return absl::InvalidArgumentError("batch_size must be >= 1");
  model::ModelOptions mo;
  if (o.dtype == "bfloat16") {
    mo.dtype = at::kBFloat16;
  } else if (o.dtype != "float32") {
    return absl::InvalidArgumentError(absl::StrCat("dtype must be float32 or bfloat16, got '", o.dtype, "'"));
  }
  if (o.device == "cuda") {
    if (!torch::cuda::is_available()) return absl::FailedPreconditionError("--device cuda but no CUDA device is available");
    mo.device = at::kCUDA;
  } else if (o.device != "cpu") {
    return absl::InvalidArgumentError(absl::StrCat("device must be cpu or cuda, got '", o.device, "'"));
  }
  auto policy = train::Policy::Load(o.model_dir, mo);
  if (!policy.ok()) return policy.status();
  return std::unique_ptr<RefereeBackend>(new ModelBackend(std::move(*policy), o));
}

}  // namespace r1r::judge
