#include "common/eval/multimodal_rewardbench.h"

#include <algorithm>
#include <fstream>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/jsonl/jsonl.h"
#include "common/eval/python_random.h"
#include "common/reward/answer_order.h"

namespace r1r::eval {
namespace {

absl::Status ParseItem(const nlohmann::json& e, MmrbItem& item) {
  if (!e.is_object()) return absl::InvalidArgumentError("not a JSON object");
  for (auto [key, field] : {std::pair{"ID", &item.id}, {"Text", &item.text}, {"Output1", &item.output1},
                            {"Output2", &item.output2}, {"Category", &item.category}}) {
    if (absl::Status s = jsonl::RequireString(e, key, *field); !s.ok()) return s;
  }
  if (e.contains("Image") && e["Image"].is_string()) item.image = e["Image"];
  std::string better;
  if (absl::Status s = jsonl::RequireString(e, "Better", better); !s.ok()) return s;
  // The official scripts: chosen = Output2 if Better == "Output2" else Output1.
  item.better = better == "Output2" ? 2 : 1;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<MmrbItem>> ReadMultimodalRewardBench(const std::string& path, jsonl::ReadReport& report) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  const nlohmann::json doc = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": expected a JSON array of items"));
  }
  std::vector<MmrbItem> items;
  for (size_t i = 0; i < doc.size(); ++i) {
    ++report.rows_seen;
    MmrbItem item;
    if (absl::Status s = ParseItem(doc[i], item); !s.ok()) {
      report.AddBad(path, static_cast<int64_t>(i), std::string(s.message()));
      continue;
    }
    ++report.rows_ok;
    items.push_back(std::move(item));
  }
  return items;
}

std::string MmrbBucket(std::string_view id, std::string_view category) {
  // ex['ID'].lower().startswith(...): ASCII folding suffices, no other character lower-cases into a-z
  // followed by nothing (U+212A KELVIN SIGN becomes 'k', in neither prefix).
  const auto starts_with_ci = [&](std::string_view prefix) {
    if (id.size() < prefix.size()) return false;
    for (size_t i = 0; i < prefix.size(); ++i) {
      if (absl::ascii_tolower(static_cast<unsigned char>(id[i])) != prefix[i]) return false;
    }
    return true;
  };
  if (category == "safety") return starts_with_ci("pairs") ? "safety/bias" : "safety/toxicity";
  if (category == "reasoning") return starts_with_ci("math") ? "reasoning/math" : "reasoning/coding";
  return std::string(category);
}

MmrbScores ScoreMultimodalRewardBench(const std::vector<MmrbItem>& items, const std::vector<Outcome>& outcomes,
                                      TieRule ties, uint64_t seed) {
  MmrbScores scores;
  PythonRandom draws(seed);  // consumed only by tied items, in row order, like the official scorer
  const size_t n = std::min(items.size(), outcomes.size());
  for (size_t i = 0; i < n; ++i) {
    bool correct = outcomes[i] == Outcome::kCorrect;
    if (outcomes[i] == Outcome::kUnparsed) {
      switch (ties) {
        case TieRule::kWrong: correct = false; break;
        case TieRule::kRight: correct = true; break;
        case TieRule::kCoinFlip: correct = (draws.Random() < 0.5 ? 1 : 2) == items[i].better; break;
        case TieRule::kHashCoin: correct = reward::SwapForItem(seed, i); break;
      }
    }
    scores.all.Add(correct);
    scores.per_bucket[MmrbBucket(items[i].id, items[i].category)].Add(correct);
  }
  return scores;
}

absl::StatusOr<std::vector<MmrbAnswerLine>> ReadMmrbAnswerFile(const std::string& path, jsonl::ReadReport& report) {
  std::vector<MmrbAnswerLine> lines;
  absl::Status status = jsonl::ForEachJsonlRow(path, report, [&](const nlohmann::json& row, int64_t) {
    MmrbAnswerLine line;
    if (absl::Status s = jsonl::RequireString(row, "ID", line.id); !s.ok()) return s;
    std::string label;
    if (absl::Status s = jsonl::RequireString(row, "Label", label); !s.ok()) return s;
    if (label != "A" && label != "B") return absl::InvalidArgumentError("'Label' must be \"A\" or \"B\"");
    line.label = label == "A" ? 1 : 2;
    if (absl::Status s = jsonl::RequireString(row, "output", line.output); !s.ok()) return s;
    if (row.contains("Meta") && row["Meta"].is_object() && row["Meta"].contains("Category") &&
        row["Meta"]["Category"].is_string()) {
      line.category = row["Meta"]["Category"];
    }
    lines.push_back(std::move(line));
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return lines;
}

Outcome OfficialVerdictOutcome(const MmrbAnswerLine& line) {
  std::optional<int> verdict;
  if (line.output.find("[[A]]") != std::string::npos) {
    verdict = 1;
  } else if (line.output.find("[[B]]") != std::string::npos) {
    verdict = 2;
  }
  return OutcomeFor(verdict, line.label);
}

}  // namespace r1r::eval
