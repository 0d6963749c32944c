// VL-RewardBench (reference benchmarks.md §1 and §5): reader for both layouts, both category rules, and the
// overall / macro accuracy under either failure policy.
#pragma once

#include <array>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/jsonl/read_report.h"
#include "common/eval/judgement.h"

namespace r1r::eval {

struct VlrbItem {
  std::string id;  // NOT unique in the benchmark: use Key()
  std::string query;
  std::string image_path;  // as written in the file
  std::array<std::string, 2> responses;
  int preferred = 0;  // index into responses of the human-preferred one

  const std::string& chosen() const { return responses[static_cast<size_t>(preferred)]; }
  const std::string& rejected() const { return responses[static_cast<size_t>(1 - preferred)]; }
  // The official scorer's key: id + query + "\t".join(sorted(responses)).
  std::string Key() const;
};

// Reads the official GitHub layout (response[2] + human_ranking, 0 = better) or the R1-Reward layout
// (chosen/rejected), row by row.
absl::StatusOr<std::vector<VlrbItem>> ReadVlRewardBench(const std::string& path, jsonl::ReadReport& report);

enum class VlrbCategoryRule {
  kOfficial,           // id prefix before the first '_' or '-': 183 general / 749 hallucination / 318 reasoning
  kR1RewardSubstring,  // R1-Reward get_acc.py: case-sensitive lower-case substrings: 484 / 448 / 318
};

// "general", "hallucination" or "reasoning".
std::string VlrbCategory(std::string_view id, VlrbCategoryRule rule);

enum class FailurePolicy {
  kExcludeFromDenominator,  // official cal.py: unparsed / no-majority items are dropped
  kCountAsWrong,            // R1-Reward and VLMEvalKit
};

struct VlrbScores {
  std::map<std::string, Tally> per_category;
  Tally overall;
  double macro = 0.0;  // mean accuracy of the categories with judged items (official cal.py)
  int64_t excluded = 0;
};

// `outcomes[i]` judges `items[i]` (after voting, if K > 1).
VlrbScores ScoreVlRewardBench(const std::vector<VlrbItem>& items, const std::vector<Outcome>& outcomes,
                              VlrbCategoryRule rule, FailurePolicy failures);

}  // namespace r1r::eval
