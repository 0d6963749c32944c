#include "common/dist/crc32c.h"

#include <array>
#include <cstring>

namespace r1r::dist {
namespace {

std::array<uint32_t, 256> MakeTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0x82F63B78u ^ (c >> 1) : c >> 1;  // Castagnoli, reflected
    t[i] = c;
  }
  return t;
}

uint32_t Crc32cTable(uint32_t crc, const uint8_t* p, size_t size) {
  static const std::array<uint32_t, 256> kTable = MakeTable();
  for (size_t i = 0; i < size; ++i) crc = kTable[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return crc;
}

#if defined(__x86_64__)
// The CRC32C instruction: 8 bytes per step, so checksumming never limits the sync.
__attribute__((target("sse4.2"))) uint32_t Crc32cSse42(uint32_t crc, const uint8_t* p, size_t size) {
  uint64_t c = crc;
  for (; size >= 8; size -= 8, p += 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    c = __builtin_ia32_crc32di(c, word);
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  for (; size > 0; --size, ++p) c32 = __builtin_ia32_crc32qi(c32, *p);
  return c32;
}
#endif

}  // namespace

uint32_t Crc32c(uint32_t crc, const void* data, size_t size) {
  const auto* p = static_cast<const uint8_t*>(data);
  crc = ~crc;
#if defined(__x86_64__)
  static const bool kHardware = __builtin_cpu_supports("sse4.2");
  crc = kHardware ? Crc32cSse42(crc, p, size) : Crc32cTable(crc, p, size);
#else
  crc = Crc32cTable(crc, p, size);
#endif
  return ~crc;
}

}  // namespace r1r::dist
