// MM-RLHF-Reward-Bench (reference benchmarks.md §3): pairs grouped by id; Acc over pairs, Acc+ over ids
// (all pairs of the id correct), per category from the media path keyword.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/jsonl/read_report.h"
#include "common/eval/judgement.h"

namespace r1r::eval {

struct MmRlhfBenchItem {
  std::string id;  // one question; several (better, worse) pairs share it
  std::string media_path;
  bool is_video = false;
  std::string prompt;
  std::string chosen;
  std::string rejected;
  std::string category;
};

absl::StatusOr<std::vector<MmRlhfBenchItem>> ReadMmRlhfRewardBench(const std::string& path, jsonl::ReadReport& report);

// The first of mcq, long, short, safety, video that is a substring of the image or video path ("other" if none).
std::string MmRlhfCategory(std::string_view media_path);

// Strict: a tie counts wrong (official scorer).
inline bool ChosenWins(double reward_chosen, double reward_rejected) { return reward_chosen > reward_rejected; }

struct MmRlhfGroupScores {
  Tally pairs;  // Acc
  Tally ids;    // Acc+
};

struct MmRlhfScores {
  MmRlhfGroupScores overall;
  std::map<std::string, MmRlhfGroupScores> per_category;
};

// `correct[i]` says whether pair `items[i]` was judged right.
MmRlhfScores ScoreMmRlhfRewardBench(const std::vector<MmRlhfBenchItem>& items, const std::vector<bool>& correct);

}  // namespace r1r::eval
