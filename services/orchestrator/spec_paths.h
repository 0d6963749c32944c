// Which paths a job's spec may name (docs/security.md), checked at submit and when the job starts.
#pragma once

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

}  // namespace r1r::orchestrator
