// Seeded answer-order randomisation with label remapping: benchmark rows put the preferred response
// first almost always, so an evaluator (and the training data) must shuffle the order per item.
#pragma once

#include <cstdint>
#include <string>

namespace r1r::reward {

// SplitMix64 finaliser: a well-mixed 64-bit hash, the project's one source of seeded coins.
uint64_t Mix64(uint64_t x);

// A deterministic fair coin per (seed, item): whether to show the responses swapped.
bool SwapForItem(uint64_t seed, uint64_t item_index);

// The label (1 or 2: which response is better) after swapping the two responses or not.
int RemapLabel(int label, bool swapped);

struct OrderedPair {
  std::string response1;
  std::string response2;
  int label = 1;  // which of response1/response2 is the preferred one
  bool swapped = false;
};

// Chosen first, unless `swap`.
OrderedPair PlaceResponses(std::string chosen, std::string rejected, bool swap);

}  // namespace r1r::reward
