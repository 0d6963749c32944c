// Dataset preparation: label balancing, the difficulty split, deterministic shuffling and sharding, and a
// resumable sampler whose position serialises into a checkpoint.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/data/sample.h"

namespace r1r::data {

// Swaps the two responses (label remapped). A reasoning trace follows: "Response 1"/"Response 2"
// (any case of the first letter) and the <answer> digit are exchanged.
void SwapResponses(PreferenceSample& sample);

// Swaps a seeded choice of majority-label samples so labels 1 and 2 differ in count by at most one.
// Returns how many samples were swapped.
size_t BalanceLabels(std::vector<PreferenceSample>& samples, uint64_t seed);

// Paper §4.3: the RL set holds samples the teacher needed >= 2 attempts for or never got right
// (unknown attempts count as hard: the released RL data carries none). SFT takes the rest, or all;
// RL takes the hard ones (the paper's), or all.
enum class SftSelection { kRest, kAll };
enum class RlSelection { kHard, kAll };
struct DifficultySplit {
  std::vector<PreferenceSample> rl;
  std::vector<PreferenceSample> sft;
};
bool IsHardForTeacher(const PreferenceSample& sample);
DifficultySplit SplitByDifficulty(const std::vector<PreferenceSample>& samples, SftSelection sft,
                                  RlSelection rl = RlSelection::kHard);

// A seeded counter-based generator (the same numbers on every platform, unlike std:: distributions).
class SeededRng {
 public:
  explicit SeededRng(uint64_t seed) : state_(seed) {}
  uint64_t Next();
  uint64_t Below(uint64_t n);  // uniform in [0, n), n > 0
  double Uniform();            // uniform in [0, 1)

 private:
  uint64_t state_;
};

// A permutation of 0..n-1 that depends only on (n, seed).
std::vector<size_t> ShuffledIndices(size_t n, uint64_t seed);

// Rank `rank` of `world` takes every world-th index; with drop_remainder all ranks get the same count.
std::vector<size_t> ShardIndices(const std::vector<size_t>& order, int rank, int world, bool drop_remainder = true);

// Where a sampler stands: serialised as "r1r-cursor-v1 seed epoch offset".
struct DataCursor {
  uint64_t seed = 0;
  int64_t epoch = 0;
  int64_t offset = 0;  // position inside this rank's shard of the epoch
  std::string Serialize() const;
  static absl::StatusOr<DataCursor> Parse(const std::string& text);
  bool operator==(const DataCursor&) const = default;
};

// Epoch after epoch: shuffle with (seed, epoch), shard, hand out batches; resumable from a cursor.
class EpochSampler {
 public:
  EpochSampler(size_t dataset_size, int rank, int world, DataCursor start);
  std::vector<size_t> NextBatch(size_t batch_size);  // crosses into the next epoch when needed
  const DataCursor& cursor() const { return cursor_; }

 private:
  void LoadEpoch();
  size_t size_;
  int rank_;
  int world_;
  DataCursor cursor_;
  std::vector<size_t> epoch_order_;
};

}  // namespace r1r::data
