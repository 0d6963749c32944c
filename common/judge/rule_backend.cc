#include "common/judge/referee_backend.h"
#include "common/reward/referee.h"

namespace r1r::judge {
namespace {

class RuleBackend : public RefereeBackend {
 public:
  std::string name() const override { return "rule"; }
  absl::StatusOr<std::vector<Verdict>> Assess(const std::vector<std::string>& responses) override {
    std::vector<Verdict> out;
    out.reserve(responses.size());
    for (const std::string& r : responses) out.push_back({reward::RuleRefereeVerdict(r), "", 1});
    return out;
  }
};

}  // namespace

std::unique_ptr<RefereeBackend> MakeRuleBackend() { return std::make_unique<RuleBackend>(); }

}  // namespace r1r::judge
