#include "services/learner/learner_requests.h"

#include <cmath>
#include <string>
#include <utility>

#include <absl/strings/str_cat.h>

#include "common/rpc/request_limits.h"

namespace r1r::learner {
namespace {

using rpc::kMaxTextBytes;
using rpc::kMaxTokensPerSequence;
constexpr int kMaxExamples = rpc::kMaxExamplesPerStep;

absl::Status Invalid(const std::string& msg) { return absl::InvalidArgumentError(msg); }

absl::Status CheckPreference(const v1::PreferencePrompt& p, const std::string& field, bool need_label) {
  for (const auto& [name, text] : {std::pair<const char*, const std::string*>{"question", &p.question()},
                                   {"response1", &p.response1()},
                                   {"response2", &p.response2()}}) {
    if (text->size() > kMaxTextBytes) return Invalid(absl::StrCat(field, ".", name, ": over 64 KiB"));
  }
  if (p.sample().image_path().size() > rpc::kMaxPathBytes) {
    return Invalid(absl::StrCat(field, ".sample.image_path: over 4096 bytes"));
  }
  const std::string& sha = p.sample().image_sha256();
  if (!sha.empty() && (sha.size() != 64 || sha.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)) {
    return Invalid(absl::StrCat(field, ".sample.image_sha256: need 64 hex digits or empty"));
  }
  if (need_label && p.label() != 1 && p.label() != 2) {
    return Invalid(absl::StrCat(field, ".label: must be 1 or 2, got ", p.label()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckInitRequest(const v1::InitRequest& req) {
  if (req.job_id().empty() || req.job_id().size() > 256) return Invalid("job_id: need 1..256 bytes");
  if (req.work_dir().empty()) return Invalid("work_dir: required");
  if (req.phase() != "sft" && req.phase() != "rl") {
    return Invalid(absl::StrCat("phase: must be sft or rl, got '", req.phase(), "'"));
  }
  if (req.total_steps() < 0) return Invalid("total_steps: must be >= 0");
  return absl::OkStatus();
}

absl::Status CheckSftStepRequest(const v1::SftStepRequest& req) {
  if (req.examples_size() < 1 || req.examples_size() > kMaxExamples) {
    return Invalid(absl::StrCat("examples: need 1..", kMaxExamples, ", got ", req.examples_size()));
  }
  for (int i = 0; i < req.examples_size(); ++i) {
    const auto& e = req.examples(i);
    const std::string field = absl::StrCat("examples[", i, "]");
    if (absl::Status s = CheckPreference(e.preference(), field + ".preference", true); !s.ok()) return s;
    if (e.target_text().empty() || e.target_text().size() > kMaxTextBytes) {
      return Invalid(absl::StrCat(field, ".target_text: need 1 byte .. 64 KiB, got ", e.target_text().size()));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckExperienceBatch(const v1::ExperienceBatch& req) {
  const int n = req.trajectories_size();
  if (n < 1 || n > kMaxExamples) return Invalid(absl::StrCat("trajectories: need 1..", kMaxExamples, ", got ", n));
  if (req.rewards_size() != n) {
    return Invalid(absl::StrCat("rewards: need one per trajectory (", n, "), got ", req.rewards_size()));
  }
  for (int i = 0; i < n; ++i) {
    const auto& t = req.trajectories(i);
    const std::string field = absl::StrCat("trajectories[", i, "]");
    if (req.rewards(i).prompt_id() != t.prompt_id()) {
      return Invalid(absl::StrCat("rewards[", i, "].prompt_id: '", req.rewards(i).prompt_id(), "' does not match ",
                                  field, ".prompt_id '", t.prompt_id(), "'"));
    }
    if (!std::isfinite(req.rewards(i).total())) return Invalid(absl::StrCat("rewards[", i, "].total: not finite"));
    if (t.prompt_token_ids_size() < 1 || t.prompt_token_ids_size() > kMaxTokensPerSequence) {
      return Invalid(absl::StrCat(field, ".prompt_token_ids: need 1..", kMaxTokensPerSequence, " tokens"));
    }
    if (t.response_token_ids_size() < 1 || t.response_token_ids_size() > kMaxTokensPerSequence) {
      return Invalid(absl::StrCat(field, ".response_token_ids: need 1..", kMaxTokensPerSequence, " tokens"));
    }
    if (t.behaviour_logprobs_size() != 0 && t.behaviour_logprobs_size() != t.response_token_ids_size()) {
      return Invalid(absl::StrCat(field, ".behaviour_logprobs: need one per response token or none"));
    }
    for (int j = 0; j < t.behaviour_logprobs_size(); ++j) {
      // A NaN or infinite log-prob would reach the importance ratio and the loss.
      if (!std::isfinite(t.behaviour_logprobs(j)) || t.behaviour_logprobs(j) > 1e-3f) {
        return Invalid(absl::StrCat(field, ".behaviour_logprobs[", j, "]: ", t.behaviour_logprobs(j),
                                    " is not a log-probability (finite, <= 0)"));
      }
    }
    if (absl::Status s = CheckPreference(t.preference(), field + ".preference", false); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status CheckSaveCheckpointRequest(const v1::SaveCheckpointRequest& req) {
  if (req.data_cursor() < 0) return Invalid("data_cursor: must be >= 0");
  if (req.export_dir().size() > rpc::kMaxPathBytes) return Invalid("export_dir: over 4096 bytes");
  return absl::OkStatus();
}

train::WirePrompt WirePromptOf(const v1::PreferencePrompt& p, absl::Span<const int32_t> token_ids) {
  train::WirePrompt w;
  w.question = p.question();
  w.response1 = p.response1();
  w.response2 = p.response2();
  w.dataset = p.sample().dataset();
  w.image_path = p.sample().image_path();
  w.image_sha256 = p.sample().image_sha256();
  w.token_ids = token_ids;
  return w;
}

}  // namespace r1r::learner
