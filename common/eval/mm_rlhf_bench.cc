#include "common/eval/mm_rlhf_bench.h"

#include <algorithm>
#include <array>

#include <nlohmann/json.hpp>

#include "common/jsonl/jsonl.h"

namespace r1r::eval {

absl::StatusOr<std::vector<MmRlhfBenchItem>> ReadMmRlhfRewardBench(const std::string& path,
                                                                   jsonl::ReadReport& report) {
  std::vector<MmRlhfBenchItem> items;
  absl::Status status = jsonl::ForEachJsonlRow(path, report, [&](const nlohmann::json& row, int64_t) {
    MmRlhfBenchItem item;
    if (absl::Status s = jsonl::RequireString(row, "id", item.id); !s.ok()) return s;
    if (absl::Status s = jsonl::RequireString(row, "prompt", item.prompt); !s.ok()) return s;
    if (absl::Status s = jsonl::RequireString(row, "chosen", item.chosen); !s.ok()) return s;
    if (absl::Status s = jsonl::RequireString(row, "rejected", item.rejected); !s.ok()) return s;
    if (row.contains("image") && row["image"].is_string()) {
      item.media_path = row["image"];
    } else if (row.contains("video") && row["video"].is_string()) {
      item.media_path = row["video"];
      item.is_video = true;
    } else {
      return absl::InvalidArgumentError("missing 'image' or 'video'");
    }
    item.category = MmRlhfCategory(item.media_path);
    items.push_back(std::move(item));
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return items;
}

std::string MmRlhfCategory(std::string_view media_path) {
  constexpr std::array<std::string_view, 5> kKeywords = {"mcq", "long", "short", "safety", "video"};
  for (std::string_view k : kKeywords) {
    if (media_path.find(k) != std::string_view::npos) return std::string(k);
  }
  return "other";
}

MmRlhfScores ScoreMmRlhfRewardBench(const std::vector<MmRlhfBenchItem>& items, const std::vector<bool>& correct) {
  MmRlhfScores scores;
  // id -> (category, all pairs correct so far), in first-seen order of ids.
  std::map<std::string, std::pair<std::string, bool>> ids;
  const size_t n = std::min(items.size(), correct.size());
  for (size_t i = 0; i < n; ++i) {
    scores.overall.pairs.Add(correct[i]);
    scores.per_category[items[i].category].pairs.Add(correct[i]);
    auto [it, inserted] = ids.try_emplace(items[i].id, items[i].category, true);
    it->second.second = it->second.second && correct[i];
  }
  for (const auto& [id, entry] : ids) {
    scores.overall.ids.Add(entry.second);
    scores.per_category[entry.first].ids.Add(entry.second);
  }
  return scores;
}

}  // namespace r1r::eval
