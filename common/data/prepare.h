// A job's data preparation: materialise the dataset (the synthetic task or a file), split off a held-out
// set, balance labels, split SFT/RL by teacher difficulty, and prepare the tokenizer in <work_dir>/model.
// Deterministic for a given spec, so a resumed job sees the same splits. Target r1r_data_prep (it reads
// the job spec, so it is built with the services only).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include "common/config/job_spec.h"
#include "common/data/sample.h"

namespace r1r::data {

// Files a spec names are read whole: larger ones are refused before reading.
inline constexpr uint64_t kMaxDatasetFileBytes = 16ULL << 30;
inline constexpr uint64_t kMaxTokenizerFileBytes = 256ULL << 20;

struct PreparedData {
  std::string dataset_dir;
  std::vector<PreferenceSample> sft;
  std::vector<PreferenceSample> rl;
  std::vector<PreferenceSample> heldout;
  int64_t bad_rows = 0;
  std::string report;  // human-readable summary
};

// The synthetic task is written to <work_dir>/data once (kept on resume); a file source is read from
// data.path, which must be a regular file. No usable row is a FailedPrecondition naming the bad rows.
absl::StatusOr<PreparedData> PrepareData(const config::JobSpec& spec, const std::string& work_dir);

// Writes <model_dir>/tokenizer.json: trained on the data's texts when tokenizer.train_vocab_size > 0,
// else copied from tokenizer.path or model.path. Kept when it already exists (resume).
absl::Status PrepareTokenizer(const config::JobSpec& spec, const PreparedData& data, const std::string& model_dir);

// Writes <model_dir>/r1r_prompt.json with the spec's data.image_placement and data.prompt_style
// (common/reward/prompt_layout.h owns the format); a value the spec check let through is an error
// naming the spec field.
absl::Status WritePromptLayout(const config::JobSpec& spec, const std::string& model_dir);

}  // namespace r1r::data
