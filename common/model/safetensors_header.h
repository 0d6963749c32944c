// The safetensors header, parsed and checked without LibTorch: the 8-byte little-endian length, the JSON
// object {name: {dtype, shape, data_offsets}}, every entry against the data that follows. Kept apart from
// safetensors.cc so the fuzzer (tools/fuzz) can reach the part that reads untrusted bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace r1r::model {

struct SafetensorsEntry {
  std::string name;
  std::string dtype;        // "BF16", "F32", ... (one of SafetensorsDtypeBytes' names)
  int64_t dtype_bytes = 0;  // bytes per element
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range inside the data section
};

struct SafetensorsLayout {
  std::vector<SafetensorsEntry> entries;  // in header order, `__metadata__` left out
  uint64_t data_offset = 0;               // where the data section starts in the file
};

// Bytes per element of a supported dtype name, 0 for any other.
int64_t SafetensorsDtypeBytes(const std::string& dtype);

// Checks the whole file held in `bytes[0, size)`: header bounds, JSON, dtypes, shapes against byte
// lengths, offsets inside the file and not overlapping. Errors are DATA_LOSS and name `path` and the tensor.
absl::StatusOr<SafetensorsLayout> ParseSafetensorsHeader(const std::string& path, const uint8_t* bytes,
                                                         size_t size);

}  // namespace r1r::model
