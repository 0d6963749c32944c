// Atomic training checkpoints: <root>/step-<N>/ holds the weights in the Hugging Face layout
// (config.json, tokenizer.json, preprocessor_config.json, model.safetensors — loadable by
// transformers and vLLM), optimizer.pt and state.json (policy version, phase, steps, data cursor,
// RNG seed). The directory is written under a temporary name and renamed; <root>/LATEST names the
// newest complete one.
#pragma once

#include <string>

#include <absl/status/statusor.h>

#include "common/train/policy.h"

namespace torch::optim {
class Optimizer;
}

namespace r1r::train {

// Writes a checkpoint; `state_json` is stored verbatim as state.json. Returns its directory.
absl::StatusOr<std::string> SaveTrainingCheckpoint(const std::string& root, int64_t step, Policy& policy,
                                                   torch::optim::Optimizer* optimizer, const std::string& state_json);

// The newest complete checkpoint directory under root, or NOT_FOUND.
absl::StatusOr<std::string> LatestCheckpoint(const std::string& root);

// Loads weights (and the optimizer state when given); returns state.json's content.
absl::StatusOr<std::string> LoadTrainingCheckpoint(const std::string& dir, Policy& policy,
                                                   torch::optim::Optimizer* optimizer);

// The optimizer state of a checkpoint alone (NOT_FOUND when it has none).
absl::Status LoadOptimizerState(const std::string& dir, torch::optim::Optimizer& optimizer);

// Weights + model files (what serve and actors load), written atomically into `dir`; a non-empty
// `state_json` is stored as state.json (serve reports its policy_version).
absl::Status ExportModelDir(Policy& policy, const std::string& dir, const std::string& state_json = "");

}  // namespace r1r::train
