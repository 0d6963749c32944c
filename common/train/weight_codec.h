// Weights on the wire: a TensorMap becomes an ordered list of (name, dtype, shape, bytes) and back,
// with a CRC32C over all bytes so a receiver detects corruption or a torn stream.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <absl/status/statusor.h>

#include "common/model/safetensors.h"

namespace r1r::train {

struct WireTensor {
  std::string name;
  std::string dtype;  // "F32" | "BF16" | "F16"
  std::vector<int64_t> shape;
  std::string bytes;  // little-endian, contiguous
};

uint32_t Crc32c(uint32_t crc, const void* data, size_t size);

absl::StatusOr<std::vector<WireTensor>> EncodeTensors(const model::TensorMap& tensors);
absl::StatusOr<model::TensorMap> DecodeTensors(const std::vector<WireTensor>& wire);

}  // namespace r1r::train
