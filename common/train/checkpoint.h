// Atomic training checkpoints: <root>/step-<N>/ holds the weights in the Hugging Face layout
// (config.json, tokenizer.json, preprocessor_config.json, model.safetensors — loadable by
// transformers and vLLM), optimizer.pt and state.json (policy version, phase, steps, data cursor,
// RNG seed). The directory is written under a temporary name and renamed; <root>/LATEST names the
// newest complete one.
#pragma once

#include <string>
#include <vector>

#include <absl/status/statusor.h>

#include "common/train/policy.h"
#include "common/train/trainer.h"

namespace r1r::train {

// Writes a checkpoint; `state_json` is stored verbatim as state.json. Returns its directory.
// The optimizer state is the trainer's (optimizer.pt, or optimizer/ shards for ShardedAdamW). When
// the trainer's state is sharded over ranks (trainer->optimizer_state_is_sharded()) every rank must
// call this: each writes its shard into <root>/step-N.shards, then rank 0 completes the checkpoint
// (weights, state.json, LATEST). Otherwise rank 0 alone calls it. `trainer` may be null (weights only).
absl::StatusOr<std::string> SaveTrainingCheckpoint(const std::string& root, int64_t step, Policy& policy,
                                                   Trainer* trainer, const std::string& state_json);

// Deletes the oldest step-N checkpoints under root until at most `keep` remain (keep <= 0: none
// deleted). The one LATEST names (what a resume loads) and `protect` (when not empty) are never
// deleted. Returns the deleted directories.
absl::StatusOr<std::vector<std::string>> PruneCheckpoints(const std::string& root, int64_t keep,
                                                          const std::string& protect = "");

// The newest complete checkpoint directory under root, or NOT_FOUND.
absl::StatusOr<std::string> LatestCheckpoint(const std::string& root);

// Loads weights (and the trainer's optimizer state when given and present); returns state.json's content.
absl::StatusOr<std::string> LoadTrainingCheckpoint(const std::string& dir, Policy& policy, Trainer* trainer);

// Weights + model files (what serve and actors load), written atomically into `dir`; a non-empty
// `state_json` is stored as state.json (serve reports its policy_version).
absl::Status ExportModelDir(Policy& policy, const std::string& dir, const std::string& state_json = "");

}  // namespace r1r::train
