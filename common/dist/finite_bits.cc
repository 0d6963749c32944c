#include "common/dist/finite_bits.h"

namespace r1r::dist {
namespace {

// An IEEE value is NaN or infinite exactly when its exponent bits are all set. A compare and an or
// per element, which the compiler vectorises with plain SSE2 (an unsigned max would need SSE4.1).
template <typename Bits>
bool NoneAllOnes(const void* data, int64_t count, Bits exponent) {
  const Bits* p = static_cast<const Bits*>(data);
  Bits any = 0;
  for (int64_t i = 0; i < count; ++i) any |= static_cast<Bits>((p[i] & exponent) == exponent);
  return any == 0;
}

}  // namespace

bool FiniteBits(const void* data, int64_t count, std::string_view dtype) {
  if (dtype == "F32") return NoneAllOnes<uint32_t>(data, count, 0x7F800000u);
  if (dtype == "BF16") return NoneAllOnes<uint16_t>(data, count, 0x7F80);
  if (dtype == "F16") return NoneAllOnes<uint16_t>(data, count, 0x7C00);
  if (dtype == "F64") return NoneAllOnes<uint64_t>(data, count, 0x7FF0000000000000ull);
  return true;
}

}  // namespace r1r::dist
