// The orchestrator's side of data preparation (the splits and the tokenizer are common/data/prepare.h):
// which paths a job's spec may name, and the prompt layout file of the model directory.
#pragma once

#include <string>

#include <absl/status/status.h>

#include "common/config/job_spec.h"
#include "common/files/paths.h"

namespace r1r::orchestrator {

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

// Writes <model_dir>/r1r_prompt.json ({"image_placement": ..., "prompt_style": ...}): every process that renders prompts
// for this model (learner, actors, serve) reads it, so training and serving lay prompts out alike.
absl::Status WritePromptLayout(const config::JobSpec& spec, const std::string& model_dir);

}  // namespace r1r::orchestrator
