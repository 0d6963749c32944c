// state.json: the learner's counters, written into every training checkpoint and every exported
// model directory. The learner writes it and reads it back on resume; serve reads the policy version
// of the model it publishes. This unit is the one owner of the format.
#pragma once

#include <cstdint>
#include <string>

#include <absl/status/statusor.h>

namespace r1r::train {

struct CheckpointState {
  std::string job_id;
  std::string phase;  // "sft" | "rl"
  int64_t policy_version = 0;
  int64_t sft_steps = 0;
  int64_t rl_steps = 0;
  int64_t skipped_steps = 0;
  int64_t data_cursor = 0;
  int64_t optimizer_steps = 0;  // the schedule's position within `phase`

  // Pretty-printed JSON, keys in alphabetical order.
  std::string ToJson() const;
  // policy_version, sft_steps and rl_steps are required; the rest default. DATA_LOSS naming `file`
  // when the text is not such an object.
  static absl::StatusOr<CheckpointState> Parse(const std::string& text, const std::string& file);
  // dir/state.json, parsed. NOT_FOUND naming the file when it is missing.
  static absl::StatusOr<CheckpointState> Read(const std::string& dir);
};

// The policy version a model directory was published at: dir/state.json's policy_version (or
// "version", from older exports), 0 when the file or the key is missing. FAILED_PRECONDITION naming
// the file when it cannot be read or is not a JSON object.
absl::StatusOr<int64_t> ReadPublishedPolicyVersion(const std::string& model_dir);

}  // namespace r1r::train
