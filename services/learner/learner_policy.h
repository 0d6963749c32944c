// The policies a learner job trains: the model in work_dir/model (made tiny, or linked from
// model.path, on first use) and the frozen KL reference in work_dir/reference.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include "common/config/job_spec.h"
#include "common/train/policy.h"

namespace r1r::learner {

// model.path files into `to`: small files are copied (a tokenizer.json already written by data prep
// wins), weights are symlinked.
absl::Status LinkModelFiles(const std::string& from, const std::string& to);

// work_dir/model: created (model.init tiny) or linked from model.path on first use, then loaded in
// the learner's dtype with the spec's pixel limits; vision frozen as model.freeze_vision says.
absl::StatusOr<std::unique_ptr<train::Policy>> LoadLearnerPolicy(const config::JobSpec& spec,
                                                                 const std::string& work_dir,
                                                                 int64_t image_cache_bytes);

// The weights RL starts from, exported once to work_dir/reference and loaded frozen.
absl::StatusOr<std::unique_ptr<train::Policy>> LoadReferencePolicy(train::Policy& policy,
                                                                   const std::string& work_dir);

}  // namespace r1r::learner
