// Weights on the wire: a TensorMap becomes an ordered list of (name, dtype, shape, bytes) and back,
// with a CRC32C over all bytes so a receiver detects corruption or a torn stream.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
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

// Sending without a copy: `data` points into `holder`, a contiguous CPU tensor (the parameter itself
// when it already is one), valid while the holder lives and nobody writes to it.
struct WireTensorView {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  at::Tensor holder;
  const char* data = nullptr;
  size_t size = 0;
};
// One at a time, so a GPU model never holds a second full copy in host memory.
absl::StatusOr<WireTensorView> ViewTensor(const std::string& name, const at::Tensor& tensor);

// Receiving without a copy per chunk: chunks are written straight into the tensor being assembled,
// each at its byte offset, which must continue the tensor.
class TensorAssembler {
 public:
  // Starts a tensor (the previous one must be complete). Errors name the tensor.
  absl::Status Begin(const std::string& name, const std::string& dtype, const std::vector<int64_t>& shape);
  absl::Status Append(int64_t offset, const void* data, size_t size);
  // Every started tensor complete; returns them (once).
  absl::StatusOr<model::TensorMap> Finish();

 private:
  absl::Status CheckCurrentComplete() const;
  model::TensorMap tensors_;
  std::string current_;
  at::Tensor tensor_;
  size_t expected_ = 0;
  size_t filled_ = 0;
};

}  // namespace r1r::train
