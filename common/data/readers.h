// Readers and writers of the training-data layouts. Readers never fail on a bad row: it is counted in the
// report (file:line, reason) and skipped; they fail only when the file cannot be read.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/jsonl/read_report.h"
#include "common/data/sample.h"
#include "common/reward/chat.h"

namespace r1r::data {

// R1-Reward RL rows: {"question", "message": "<JSON chat list as a string>", "answer": ["<answer>N</answer>"]}.
// The responses are recovered from the Table 1 prompt inside the message; the image from its image part.
absl::StatusOr<std::vector<PreferenceSample>> ReadR1RewardJsonl(const std::string& path, jsonl::ReadReport& report);

// MM-RLHF preference pairs (dpo_pairs.jsonl, MM-RLHF-Reward-Bench): {"id", "prompt", "chosen", "rejected",
// "image" | "video"}. Response 1 is the chosen one (label 1): balance or randomise the order afterwards.
absl::StatusOr<std::vector<PreferenceSample>> ReadMmRlhfPairsJsonl(const std::string& path, jsonl::ReadReport& report);

// The project's plain pairs: {"id", "image", "question", "response1", "response2", "label": 1|2,
// "teacher_attempts"?, "teacher_solved"?, "reasoning"?}.
absl::StatusOr<std::vector<PreferenceSample>> ReadPlainPairsJsonl(const std::string& path, jsonl::ReadReport& report);

// Writers. Image paths are written as stored in the samples (relative paths stay relative to the file).
absl::Status WritePlainPairsJsonl(const std::string& path, const std::vector<PreferenceSample>& samples);
absl::Status WriteR1RewardJsonl(const std::string& path, const std::vector<PreferenceSample>& samples,
                                reward::ImagePlacement placement = reward::ImagePlacement::kAfterText);

}  // namespace r1r::data
