// Multimodal RewardBench (reference benchmarks.md §2): items from all_data.json (a JSON array), the official
// answer-file lines, buckets (safety and reasoning split by ID prefix), micro "all" accuracy and the tie rule.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/jsonl/read_report.h"
#include "common/eval/judgement.h"

namespace r1r::eval {

struct MmrbItem {
  std::string id;
  std::string text;
  std::string image;
  std::string output1;
  std::string output2;
  int better = 1;  // 1: Output1 is better, 2: Output2
  std::string category;
};

// all_data.json: a JSON array of {ID, Text, Image, Output1, Output2, Better: "Output1"|"Output2", Category}.
// Bad elements are reported with their array index as the line.
absl::StatusOr<std::vector<MmrbItem>> ReadMultimodalRewardBench(const std::string& path, jsonl::ReadReport& report);

// "safety/bias" (lower-cased ID starts with "pairs") or "safety/toxicity"; "reasoning/math" (lower-cased ID
// starts with "math") or "reasoning/coding"; otherwise the category itself. The scorers lower-case the ID.
std::string MmrbBucket(std::string_view id, std::string_view category);

// What a tie or a missing verdict scores.
enum class TieRule {
  kWrong,     // R1-Reward's 1_get_accuracy.py (strict rewards[0] > rewards[1])
  kRight,     // get_IXC_reward.py (>=)
  kCoinFlip,  // official 2_get_accuracy.py: random.seed(seed), then per tied item in order
              // `'A' if random.random() < 0.5 else 'B'` against the label; seed 123 gives the official number
  kHashCoin,  // a coin hashed from (seed, item index): independent of which other items tied
};

// The seed of the official scorer's random.seed(123).
inline constexpr uint64_t kMmrbOfficialTieSeed = 123;

struct MmrbScores {
  Tally all;  // micro over every item: the leaderboard's "overall"
  std::map<std::string, Tally> per_bucket;
};

// `outcomes[i]` judges items[i]; kUnparsed is a tie / no verdict and is scored by `ties`.
MmrbScores ScoreMultimodalRewardBench(const std::vector<MmrbItem>& items, const std::vector<Outcome>& outcomes,
                                      TieRule ties, uint64_t seed);

// The official judge answer file: {ID, Label: "A"|"B", output, Meta: {Category}}.
struct MmrbAnswerLine {
  std::string id;
  int label = 1;  // 1 = A, 2 = B
  std::string output;
  std::string category;
};
absl::StatusOr<std::vector<MmrbAnswerLine>> ReadMmrbAnswerFile(const std::string& path, jsonl::ReadReport& report);

// "[[A]]" in the output -> A, else "[[B]]" -> B (A wins when both appear); neither -> kUnparsed.
Outcome OfficialVerdictOutcome(const MmrbAnswerLine& line);

}  // namespace r1r::eval
