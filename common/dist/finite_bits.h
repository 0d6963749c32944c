// NaN and infinity found from the bits of floating-point weights, as one fast pass a receiver can fuse
// with its checksum (torch::isfinite allocates a mask and an abs copy the size of every tensor).
#pragma once

#include <cstdint>
#include <string_view>

namespace r1r::dist {

// Whether none of the `count` elements at `data` (aligned to their size) is NaN or infinite, for a
// snapshot dtype: F32, BF16, F16, F64. Other dtypes (integers) are always finite.
bool FiniteBits(const void* data, int64_t count, std::string_view dtype);

}  // namespace r1r::dist
