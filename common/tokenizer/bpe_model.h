#pragma once
// Byte-level BPE model: vocabulary, ranked merges and the merge loop. It works on token ids
// throughout: a piece starts as one id per byte and adjacent ids merge by rank (lowest first,
// leftmost on ties, as Hugging Face's Word::merge_all does). Results are cached per piece.

#include <algorithm>
#include <array>
#include <climits>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace r1r::tokenizer {

class BpeModel {
 public:
  // `vocab`: byte-level token text -> id. `merges`: pairs of byte-level token texts, best first.
  static absl::StatusOr<std::unique_ptr<BpeModel>> Create(
      const std::vector<std::pair<std::string, int32_t>>& vocab,
      const std::vector<std::pair<std::string, std::string>>& merges);

  // Appends the ids of one pre-tokenised piece (raw bytes) to `out`.
  void Encode(std::string_view piece, std::vector<int32_t>* out) const;

  // Raw bytes of a vocabulary id; nullptr for ids outside the vocabulary.
  const std::string* TokenBytes(int32_t id) const;
  // Byte-level text of a vocabulary id ("Ġthe"); empty for unknown ids.
  std::string TokenText(int32_t id) const;
  // Id of a byte-level token text; -1 when absent.
  int32_t TokenId(std::string_view byte_level_text) const;

  // One more than the largest vocabulary id.
  int32_t id_limit() const { return static_cast<int32_t>(id_to_bytes_.size()); }
  // The largest id (exclusive) a tokenizer with `num_tokens` entries may use: as many unused ids as used
  // ones plus 64Ki (reserved ranges), so the dense id tables stay proportional to the file.
  static int64_t IdLimitFor(int64_t num_tokens) { return std::min<int64_t>(2 * num_tokens + 65536, INT32_MAX); }
  size_t num_merges() const { return merges_.size(); }

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  static uint64_t PairKey(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  void MergeIds(std::vector<int32_t>* ids) const;

  std::array<int32_t, 256> byte_ids_{};
  std::vector<std::string> id_to_bytes_;
  std::vector<bool> id_known_;
  absl::flat_hash_map<std::string, int32_t> text_to_id_;
  absl::flat_hash_map<uint64_t, Merge> merges_;

  // Piece cache, sharded so that concurrent Encode calls rarely contend.
  static constexpr size_t kCacheShards = 16;
  static constexpr size_t kCacheEntriesPerShard = 8192;
  struct CacheShard {
    absl::Mutex mu;
    absl::flat_hash_map<std::string, std::vector<int32_t>> map ABSL_GUARDED_BY(mu);
  };
  mutable std::array<CacheShard, kCacheShards> cache_;
};

}  // namespace r1r::tokenizer
