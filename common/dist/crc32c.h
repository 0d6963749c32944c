// CRC32C (Castagnoli) over bytes: the weight broadcast's checksum, and (through train::Crc32c) the gRPC
// weight stream's trailer, so a broadcast and a stream of the same weights carry the same checksum.
#pragma once

#include <cstddef>
#include <cstdint>

namespace r1r::dist {

// Continues `crc` (0 to start) over `size` bytes: SSE4.2 where the CPU has it, a table otherwise.
uint32_t Crc32c(uint32_t crc, const void* data, size_t size);

}  // namespace r1r::dist
