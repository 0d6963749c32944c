// The data-prep phase: materialise the job's dataset (the synthetic task or a file), split off a
// held-out set, balance labels, split SFT/RL by teacher difficulty, and prepare the tokenizer in
// <work_dir>/model. Deterministic for a given spec, so a resumed job sees the same splits.
#pragma once

#include <string>
#include <vector>

#include <absl/status/statusor.h>

#include "common/config/job_spec.h"
#include "common/data/sample.h"
#include "common/files/paths.h"

namespace r1r::orchestrator {

struct PreparedData {
  std::string dataset_dir;
  std::vector<data::PreferenceSample> sft;
  std::vector<data::PreferenceSample> rl;
  std::vector<data::PreferenceSample> heldout;
  int64_t bad_rows = 0;
  std::string report;  // human-readable summary
};

// Where a job's paths may point (docs/security.md): data.path, tokenizer.path and model.path under
// `data` (--data-root), work_dir under `work` (--work-root).
struct SpecRoots {
  files::Roots data;
  files::Roots work;
};

// Confines the spec's paths to `roots`, replacing each with its resolved spelling; a data.path or
// tokenizer.path must also be a regular file. The error names the field. Run at submit and again
// when the job starts (the files may have changed meanwhile).
absl::Status ConfineSpecPaths(const SpecRoots& roots, config::JobSpec& spec);

absl::StatusOr<PreparedData> PrepareData(const config::JobSpec& spec, const std::string& work_dir);

// Writes <model_dir>/tokenizer.json: trained on the data's texts when tokenizer.train_vocab_size > 0,
// else copied from tokenizer.path or model.path. Kept when it already exists (resume).
absl::Status PrepareTokenizer(const config::JobSpec& spec, const PreparedData& data, const std::string& model_dir);

// Writes <model_dir>/r1r_prompt.json ({"image_placement": ..., "prompt_style": ...}): every process that renders prompts
// for this model (learner, actors, serve) reads it, so training and serving lay prompts out alike.
absl::Status WritePromptLayout(const config::JobSpec& spec, const std::string& model_dir);

}  // namespace r1r::orchestrator
