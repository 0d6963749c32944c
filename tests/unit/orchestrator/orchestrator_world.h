// A state dir, a data root and a work root under the test's temp dir, with a job store and the spec
// roots the orchestrator would build from --data-root and --work-root. No network.
#pragma once

#include <memory>
#include <string>

#include "common/jobs/job_store.h"
#include "services/orchestrator/spec_paths.h"

namespace r1r::orchestrator {

struct OrchestratorWorld {
  explicit OrchestratorWorld(const std::string& name);

  std::string root;       // <TempDir>/r1r_orchestrator_<name>, empty at start
  std::string data_root;  // <root>/data
  std::string work_root;  // <root>/work
  std::unique_ptr<jobs::JobStore> store;
  SpecRoots roots;
};

// A spec that passes ParseJobSpec and the learner memory plan: a tiny CPU model on the synthetic
// task, with `extra` appended (top-level YAML, e.g. "sft: {enabled: false}\n").
std::string TinySpecYaml(const std::string& extra = "");

}  // namespace r1r::orchestrator
