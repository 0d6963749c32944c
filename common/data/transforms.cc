#include "common/data/transforms.h"

#include <algorithm>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/reward/answer_order.h"

namespace r1r::data {

void SwapResponses(PreferenceSample& s) {
  std::swap(s.response1, s.response2);
  s.label = reward::RemapLabel(s.label, true);
  if (s.reasoning.has_value()) {
    // Through placeholders so the two replacements do not undo each other.
    std::string r = absl::StrReplaceAll(*s.reasoning, {{"Response 1", "\x01R"},
                                                       {"response 1", "\x01r"},
                                                       {"<answer>1</answer>", "\x01A"}});
    r = absl::StrReplaceAll(r, {{"Response 2", "Response 1"},
                                {"response 2", "response 1"},
                                {"<answer>2</answer>", "<answer>1</answer>"}});
    s.reasoning = absl::StrReplaceAll(r, {{"\x01R", "Response 2"}, {"\x01r", "response 2"},
                                          {"\x01A", "<answer>2</answer>"}});
  }
}

size_t BalanceLabels(std::vector<PreferenceSample>& samples, uint64_t seed) {
  std::vector<size_t> ones, twos;
  for (size_t i = 0; i < samples.size(); ++i) (samples[i].label == 1 ? ones : twos).push_back(i);
  std::vector<size_t>& majority = ones.size() > twos.size() ? ones : twos;
  const size_t excess = (std::max(ones.size(), twos.size()) - std::min(ones.size(), twos.size())) / 2;
  const std::vector<size_t> pick = ShuffledIndices(majority.size(), seed);
  for (size_t k = 0; k < excess; ++k) SwapResponses(samples[majority[pick[k]]]);
  return excess;
}

bool IsHardForTeacher(const PreferenceSample& s) {
  return !s.teacher_solved || s.teacher_attempts == 0 || s.teacher_attempts >= 2;
}

DifficultySplit SplitByDifficulty(const std::vector<PreferenceSample>& samples, SftSelection sft, RlSelection rl) {
  DifficultySplit split;
  for (const PreferenceSample& s : samples) {
    const bool hard = IsHardForTeacher(s);
    if (hard || rl == RlSelection::kAll) split.rl.push_back(s);
    if (!hard || sft == SftSelection::kAll) split.sft.push_back(s);
  }
  return split;
}

uint64_t SeededRng::Next() { return reward::Mix64(state_++); }

uint64_t SeededRng::Below(uint64_t n) {
  // Rejection sampling: no modulo bias.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do {
    x = Next();
  } while (x >= limit);
  return x % n;
}

double SeededRng::Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

std::vector<size_t> ShuffledIndices(size_t n, uint64_t seed) {
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  SeededRng rng(reward::Mix64(seed));
  for (size_t i = n; i > 1; --i) std::swap(order[i - 1], order[rng.Below(i)]);  // Fisher-Yates
  return order;
}

std::vector<size_t> ShardIndices(const std::vector<size_t>& order, int rank, int world, bool drop_remainder) {
  const size_t usable = drop_remainder ? order.size() - order.size() % static_cast<size_t>(world) : order.size();
  std::vector<size_t> shard;
  for (size_t i = static_cast<size_t>(rank); i < usable; i += static_cast<size_t>(world)) shard.push_back(order[i]);
  return shard;
}

std::string DataCursor::Serialize() const { return absl::StrCat("r1r-cursor-v1 ", seed, " ", epoch, " ", offset); }

absl::StatusOr<DataCursor> DataCursor::Parse(const std::string& text) {
  std::istringstream in(text);
  std::string tag;
  DataCursor c;
  if (!(in >> tag >> c.seed >> c.epoch >> c.offset) || tag != "r1r-cursor-v1" || c.epoch < 0 || c.offset < 0) {
    return absl::InvalidArgumentError(absl::StrCat("not a data cursor: '", text, "'"));
  }
  std::string extra;
  if (in >> extra) return absl::InvalidArgumentError(absl::StrCat("trailing text in data cursor: '", text, "'"));
  return c;
}

EpochSampler::EpochSampler(size_t dataset_size, int rank, int world, DataCursor start)
    : size_(dataset_size), rank_(rank), world_(world), cursor_(start) {
  LoadEpoch();
}

void EpochSampler::LoadEpoch() {
  epoch_order_ = ShardIndices(ShuffledIndices(size_, cursor_.seed + static_cast<uint64_t>(cursor_.epoch)), rank_,
                              world_);
}

std::vector<size_t> EpochSampler::NextBatch(size_t batch_size) {
  std::vector<size_t> batch;
  if (epoch_order_.empty()) return batch;
  while (batch.size() < batch_size) {
    if (static_cast<size_t>(cursor_.offset) >= epoch_order_.size()) {
      ++cursor_.epoch;
      cursor_.offset = 0;
      LoadEpoch();
    }
    batch.push_back(epoch_order_[static_cast<size_t>(cursor_.offset++)]);
  }
  return batch;
}

}  // namespace r1r::data
