// libFuzzer: the safetensors header checks on arbitrary bytes (a checkpoint, a model dir, a weight file
// a user points r1r-serve or the learner at). Every accepted entry must lie inside the data section.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "common/model/safetensors_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto layout = r1r::model::ParseSafetensorsHeader("fuzz.safetensors", data, size);
  if (!layout.ok()) return 0;
  const uint64_t data_bytes = size - layout->data_offset;
  for (const auto& e : layout->entries) {
    if (e.begin > e.end || e.end > data_bytes || e.dtype_bytes <= 0) std::abort();
  }
  return 0;
}
