#include "common/eval/vl_rewardbench.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/jsonl/jsonl.h"

namespace r1r::eval {

std::string VlrbItem::Key() const {
  std::array<std::string, 2> sorted = responses;
  std::sort(sorted.begin(), sorted.end());
  return absl::StrCat(id, query, sorted[0], "\t", sorted[1]);
}

absl::StatusOr<std::vector<VlrbItem>> ReadVlRewardBench(const std::string& path, jsonl::ReadReport& report) {
  std::vector<VlrbItem> items;
  absl::Status status = jsonl::ForEachJsonlRow(path, report, [&](const nlohmann::json& row, int64_t) {
    VlrbItem item;
    if (absl::Status s = jsonl::RequireString(row, "id", item.id); !s.ok()) return s;
    if (row.contains("response")) {  // official layout
      if (absl::Status s = jsonl::RequireString(row, "query", item.query); !s.ok()) return s;
      const nlohmann::json& resp = row["response"];
      const auto ranking = row.find("human_ranking");
      if (!resp.is_array() || resp.size() != 2 || !resp[0].is_string() || !resp[1].is_string()) {
        return absl::InvalidArgumentError("'response' must be a list of 2 strings");
      }
      if (ranking == row.end() || !ranking->is_array() || ranking->size() != 2 ||
          !(*ranking == nlohmann::json({0, 1}) || *ranking == nlohmann::json({1, 0}))) {
        return absl::InvalidArgumentError("'human_ranking' must be [0, 1] or [1, 0]");
      }
      item.responses = {resp[0].get<std::string>(), resp[1].get<std::string>()};
      item.preferred = (*ranking)[0].get<int>() == 0 ? 0 : 1;
      if (row.contains("image_path") && row["image_path"].is_string()) item.image_path = row["image_path"];
    } else {  // R1-Reward layout
      if (absl::Status s = jsonl::RequireString(row, "prompt", item.query); !s.ok()) return s;
      if (absl::Status s = jsonl::RequireString(row, "chosen", item.responses[0]); !s.ok()) return s;
      if (absl::Status s = jsonl::RequireString(row, "rejected", item.responses[1]); !s.ok()) return s;
      item.preferred = 0;
      if (row.contains("image") && row["image"].is_string()) item.image_path = row["image"];
    }
    items.push_back(std::move(item));
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return items;
}

std::string VlrbCategory(std::string_view id, VlrbCategoryRule rule) {
  if (rule == VlrbCategoryRule::kR1RewardSubstring) {
    const auto has = [&](std::string_view s) { return id.find(s) != std::string_view::npos; };
    if (has("mmmu") || has("mathverse")) return "reasoning";
    if (has("hallucination") || has("rlhf") || has("rlaif")) return "hallucination";
    return "general";
  }
  const std::string_view prefix = id.substr(0, id.find_first_of("_-"));
  if (prefix == "RLAIF" || prefix == "RLHF" || prefix == "hallucination") return "hallucination";
  if (prefix == "mathverse" || prefix == "mmmu") return "reasoning";
  return "general";  // wildvision-battle and vlfeedback
}

VlrbScores ScoreVlRewardBench(const std::vector<VlrbItem>& items, const std::vector<Outcome>& outcomes,
                              VlrbCategoryRule rule, FailurePolicy failures) {
  VlrbScores scores;
  for (const char* c : {"general", "hallucination", "reasoning"}) scores.per_category[c] = Tally{};
  const size_t n = std::min(items.size(), outcomes.size());
  for (size_t i = 0; i < n; ++i) {
    if (outcomes[i] == Outcome::kUnparsed && failures == FailurePolicy::kExcludeFromDenominator) {
      ++scores.excluded;
      continue;
    }
    const bool correct = outcomes[i] == Outcome::kCorrect;
    scores.per_category[VlrbCategory(items[i].id, rule)].Add(correct);
    scores.overall.Add(correct);
  }
  // cal.py averages the categories that judged something: an empty one is left out, not scored 0.
  double sum = 0.0;
  int nonempty = 0;
  for (const auto& [name, tally] : scores.per_category) {
    if (tally.total == 0) continue;
    sum += tally.Accuracy();
    ++nonempty;
  }
  scores.macro = nonempty > 0 ? sum / nonempty : 0.0;
  return scores;
}

}  // namespace r1r::eval
