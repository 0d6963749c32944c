// The resolved plan of a job for `r1r submit --dry-run`: phases, processes and a memory estimate
// per role, derived from the model's config.json when it is readable.
#pragma once

#include <string>

#include "common/config/job_spec.h"

namespace r1r::config {

struct ModelSize {
  double parameters = 0;        // total, text + vision
  double hidden_size = 0;
  double num_layers = 0;
  double num_kv_heads = 0;
  double head_dim = 0;
  bool known = false;
  bool from_published_config = false;  // matched by name (e.g. "-7B") because config.json was not readable
  std::string problem;                 // why not known, when config.json was read but is malformed
};

// From <model.path>/config.json, or the tiny spec; unknown when neither is available.
ModelSize EstimateModelSize(const JobSpec& spec);
std::string DescribePlan(const JobSpec& spec);

}  // namespace r1r::config
