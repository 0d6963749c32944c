// Safetensors IO (https://github.com/huggingface/safetensors format): an 8-byte little-endian header
// length, a JSON header {name: {dtype, shape, data_offsets}}, then the raw little-endian data.
//
// Reading maps the file (copy-on-write, so returned tensors may be modified without touching the
// file) and validates everything before any tensor is returned: header bounds, JSON, dtype, shape
// against byte length, offsets inside the file and not overlapping. Errors name the file and tensor.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <ATen/core/Tensor.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace r1r::model {

// Sorted by name so iteration (and written files) are deterministic.
using TensorMap = std::map<std::string, at::Tensor>;

// Reads one .safetensors file. Tensors are CPU views of the mapping (kept alive by the tensors).
// Supported dtypes: BF16, F16, F32 (and F64, I64, I32, U8, BOOL for completeness of metadata-free files).
absl::StatusOr<TensorMap> ReadSafetensors(const std::string& path);

// Reads a checkpoint directory: model.safetensors.index.json (sharded) if present, else
// model.safetensors if present (other .safetensors beside it are not weights), else every
// *.safetensors file in it. Keys are returned as written (see NormalizeCheckpointKey).
absl::StatusOr<TensorMap> ReadCheckpointTensors(const std::string& dir);

// Writes tensors (moved to CPU, made contiguous) in the safetensors format with
// __metadata__ {"format": "pt"} so transformers/vLLM accept it.
absl::Status WriteSafetensors(const std::string& path, const TensorMap& tensors);

// Writes `model.safetensors`, or shards `model-0000i-of-0000n.safetensors` plus
// `model.safetensors.index.json` when the total exceeds max_shard_bytes.
absl::Status WriteCheckpointTensors(const std::string& dir, const TensorMap& tensors,
                                    int64_t max_shard_bytes = int64_t{5} << 30);

}  // namespace r1r::model
