#include "common/reward/answer_order.h"

#include <utility>

namespace r1r::reward {

uint64_t Mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

bool SwapForItem(uint64_t seed, uint64_t item_index) { return (Mix64(Mix64(seed) ^ item_index) >> 63) != 0; }

int RemapLabel(int label, bool swapped) { return swapped ? 3 - label : label; }

OrderedPair PlaceResponses(std::string chosen, std::string rejected, bool swap) {
  OrderedPair pair;
  pair.swapped = swap;
  pair.label = RemapLabel(1, swap);
  if (swap) {
    pair.response1 = std::move(rejected);
    pair.response2 = std::move(chosen);
  } else {
    pair.response1 = std::move(chosen);
    pair.response2 = std::move(rejected);
  }
  return pair;
}

}  // namespace r1r::reward
