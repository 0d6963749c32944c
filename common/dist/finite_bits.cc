#include "common/dist/finite_bits.h"

namespace r1r::dist {
namespace {

// An IEEE value is NaN or infinite exactly when its exponent bits are all set, that is when its bits
// without the sign are >= the bits of +infinity. One max over the elements (vectorised) decides.
template <typename Bits>
bool BelowInfinity(const void* data, int64_t count, Bits magnitude_mask, Bits infinity) {
  const Bits* p = static_cast<const Bits*>(data);
  Bits largest = 0;
  for (int64_t i = 0; i < count; ++i) {
    const Bits m = static_cast<Bits>(p[i] & magnitude_mask);
    largest = m > largest ? m : largest;
  }
  return largest < infinity;
}

}  // namespace

bool FiniteBits(const void* data, int64_t count, std::string_view dtype) {
  if (dtype == "F32") return BelowInfinity<uint32_t>(data, count, 0x7FFFFFFFu, 0x7F800000u);
  if (dtype == "BF16") return BelowInfinity<uint16_t>(data, count, 0x7FFF, 0x7F80);
  if (dtype == "F16") return BelowInfinity<uint16_t>(data, count, 0x7FFF, 0x7C00);
  if (dtype == "F64") return BelowInfinity<uint64_t>(data, count, 0x7FFFFFFFFFFFFFFFull, 0x7FF0000000000000ull);
  return true;
}

}  // namespace r1r::dist
