// Loading and saving Qwen2.5-VL weights in the Hugging Face checkpoint layout.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/model/model.h"
#include "common/model/safetensors.h"

namespace r1r::model {

// Maps the key layouts of different transformers versions and converters onto the legacy names the
// model uses: model.language_model.* -> model.*, model.visual.* -> visual.*, language_model.model.* ->
// model.*, language_model.lm_head.* -> lm_head.*, vision_tower.* -> visual.*.
std::string NormalizeCheckpointKey(const std::string& key);

// Copies `tensors` (any supported float dtype, any key layout) into the model's parameters, casting
// to the model's dtype/device. Every parameter must be present with the exact shape; a tensor the
// model does not have is an error too (except lm_head.weight of a tied model and rotary inv_freq
// buffers). Errors name the tensor.
absl::Status LoadWeights(Qwen2_5_VL& model, const TensorMap& tensors);

// config.json + safetensors (sharded or not) of a checkpoint directory.
absl::StatusOr<std::shared_ptr<Qwen2_5_VL>> LoadPretrained(const std::string& dir, const ModelOptions& options);

// Parameters under their Hugging Face (legacy) names; no lm_head.weight when tied. The tensors alias
// the parameters (detached): copy them if the model keeps training while they are used.
TensorMap ExportWeights(Qwen2_5_VL& model);

// Writes config.json and model.safetensors (or shards + index) that transformers and vLLM load.
absl::Status SaveCheckpoint(Qwen2_5_VL& model, const std::string& dir, int64_t max_shard_bytes = int64_t{5} << 30);

}  // namespace r1r::model
