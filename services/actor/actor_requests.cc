#include "services/actor/actor_requests.h"

#include <cmath>
#include <set>

#include <absl/strings/str_cat.h>

#include "common/reward/answer_order.h"
#include "common/rpc/request_limits.h"

namespace r1r::actor {
namespace {

using rpc::kMaxTextBytes;
constexpr int kMaxPrompts = rpc::kMaxPromptsPerGenerate;
constexpr int kMaxTokens = rpc::kMaxTokensPerSequence;

absl::Status Invalid(const std::string& msg) { return absl::InvalidArgumentError(msg); }

// The prompt id's bytes folded through reward::Mix64 (with its length, so "a" and "a\0" differ).
// Only determinism matters here: the seed feeds a sampler, not a published number.
uint64_t HashOfId(const std::string& id) {
  uint64_t h = reward::Mix64(id.size());
  for (unsigned char c : id) h = reward::Mix64(h ^ c);
  return h;
}

}  // namespace

absl::Status CheckGenerateRequest(const v1::GenerateRolloutsRequest& req) {
  if (req.prompts_size() < 1 || req.prompts_size() > kMaxPrompts) {
    return Invalid(absl::StrCat("prompts: need 1..", kMaxPrompts, ", got ", req.prompts_size()));
  }
  const auto& s = req.sampling();
  if (!std::isfinite(s.temperature()) || s.temperature() < 0 || s.temperature() > 100) {
    return Invalid(absl::StrCat("sampling.temperature: need 0..100, got ", s.temperature()));
  }
  if (!std::isfinite(s.top_p()) || s.top_p() < 0 || s.top_p() > 1) {
    return Invalid(absl::StrCat("sampling.top_p: need (0, 1] (0 = 1), got ", s.top_p()));
  }
  if (s.max_new_tokens() < 1 || s.max_new_tokens() > kMaxTokens) {
    return Invalid(absl::StrCat("sampling.max_new_tokens: need 1..", kMaxTokens, ", got ", s.max_new_tokens()));
  }
  if (s.stop_token_ids_size() > 64) return Invalid("sampling.stop_token_ids: at most 64");
  std::set<std::string> ids;
  for (int i = 0; i < req.prompts_size(); ++i) {
    const auto& p = req.prompts(i);
    const std::string field = absl::StrCat("prompts[", i, "]");
    if (p.prompt_id().empty() || p.prompt_id().size() > 256) return Invalid(field + ".prompt_id: need 1..256 bytes");
    if (!ids.insert(p.prompt_id()).second) {
      return Invalid(absl::StrCat(field, ".prompt_id: duplicate '", p.prompt_id(), "'"));
    }
    if (p.prompt_token_ids_size() > kMaxTokens) {
      return Invalid(absl::StrCat(field, ".prompt_token_ids: over ", kMaxTokens));
    }
    const auto& pref = p.preference();
    if (pref.question().size() > kMaxTextBytes || pref.response1().size() > kMaxTextBytes ||
        pref.response2().size() > kMaxTextBytes) {
      return Invalid(field + ".preference: question and responses must be <= 64 KiB each");
    }
    const std::string& sha = pref.sample().image_sha256();
    if (!sha.empty() && (sha.size() != 64 || sha.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)) {
      return Invalid(field + ".preference.sample.image_sha256: need 64 hex digits or empty");
    }
    if (p.prompt_token_ids_size() == 0 && pref.question().empty()) {
      return Invalid(field + ": needs prompt_token_ids or preference.question");
    }
  }
  return absl::OkStatus();
}

uint64_t PromptSeed(uint64_t request_seed, int index, const std::string& prompt_id) {
  const uint64_t s = request_seed != 0 ? reward::Mix64(request_seed + static_cast<uint64_t>(index)) : HashOfId(prompt_id);
  return s == 0 ? 1 : s;
}

model::SamplingParams SamplingFor(const v1::SamplingParams& sp, int index, const std::string& prompt_id) {
  model::SamplingParams s;
  s.temperature = sp.temperature();
  s.top_p = sp.top_p() == 0 ? 1.0 : sp.top_p();
  s.top_k = sp.top_k() > 0 ? sp.top_k() : 0;
  s.max_new_tokens = sp.max_new_tokens();
  s.seed = PromptSeed(sp.seed(), index, prompt_id);
  s.stop_token_ids.assign(sp.stop_token_ids().begin(), sp.stop_token_ids().end());
  return s;
}

train::WirePrompt WirePromptOf(const v1::Prompt& p) {
  const auto& pref = p.preference();
  train::WirePrompt w;
  w.question = pref.question();
  w.response1 = pref.response1();
  w.response2 = pref.response2();
  w.dataset = pref.sample().dataset();
  w.image_path = pref.sample().image_path();
  w.image_sha256 = pref.sample().image_sha256();
  w.token_ids = absl::MakeConstSpan(p.prompt_token_ids().data(), static_cast<size_t>(p.prompt_token_ids_size()));
  return w;
}

bool IsAllowedTarget(const std::string& target, const std::vector<std::string>& allowed) {
  const size_t colon = target.rfind(':');
  if (colon == std::string::npos) return false;
  for (const std::string& a : allowed) {
    if (a == target) return true;
    if (a.size() > 2 && a.substr(a.size() - 2) == ":*" && a.substr(0, a.size() - 1) == target.substr(0, colon + 1)) {
      return true;
    }
  }
  return false;
}

}  // namespace r1r::actor
