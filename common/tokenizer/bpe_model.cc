#include "common/tokenizer/bpe_model.h"

#include <queue>

#include "absl/hash/hash.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/tokenizer/byte_level.h"

namespace r1r::tokenizer {

absl::StatusOr<std::unique_ptr<BpeModel>> BpeModel::Create(
    const std::vector<std::pair<std::string, int32_t>>& vocab,
    const std::vector<std::pair<std::string, std::string>>& merges) {
  auto model = std::unique_ptr<BpeModel>(new BpeModel());
  int32_t max_id = -1;
  const int64_t limit = IdLimitFor(static_cast<int64_t>(vocab.size()));
  for (const auto& [text, id] : vocab) {
    if (id < 0) return absl::InvalidArgumentError(absl::StrCat("negative id for token '", text, "'"));
    // The id tables are dense (max_id + 1 entries): an id of 2^31 - 1 asked for 2^31 strings.
    if (id >= limit) {
      return absl::InvalidArgumentError(absl::StrCat("id ", id, " for token '", text.substr(0, 64), "' is far past the ",
                                                     vocab.size(), " vocabulary entries (ids must stay below ",
                                                     limit, ")"));
    }
    max_id = std::max(max_id, id);
  }
  model->id_to_bytes_.resize(max_id + 1);
  model->id_known_.assign(max_id + 1, false);
  model->text_to_id_.reserve(vocab.size());
  for (const auto& [text, id] : vocab) {
    std::optional<std::string> bytes = ByteLevelToBytes(text);
    // Tokens outside the byte alphabet cannot be produced by merging bytes; keep their own bytes
    // (what the ByteLevel decoder does) so decoding still works.
    model->id_to_bytes_[id] = bytes ? *std::move(bytes) : text;
    model->id_known_[id] = true;
    model->text_to_id_[text] = id;
  }
  for (int b = 0; b < 256; ++b) {
    const int32_t id = model->TokenId(ByteToUnicodeText(static_cast<uint8_t>(b)));
    if (id < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "byte-level vocabulary lacks the token for byte ", b, " ('", ByteToUnicodeText(b), "')"));
    }
    model->byte_ids_[b] = id;
  }
  model->merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    const int32_t ia = model->TokenId(a), ib = model->TokenId(b), merged = model->TokenId(a + b);
    if (ia < 0 || ib < 0 || merged < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("merge #", rank, " ('", a, "' '", b, "') uses a token missing from the vocabulary"));
    }
    // First occurrence wins, as in Hugging Face (later duplicates have a worse rank).
    model->merges_.try_emplace(PairKey(ia, ib), Merge{static_cast<int32_t>(rank), merged});
  }
  return model;
}

const std::string* BpeModel::TokenBytes(int32_t id) const {
  if (id < 0 || id >= id_limit() || !id_known_[id]) return nullptr;
  return &id_to_bytes_[id];
}

std::string BpeModel::TokenText(int32_t id) const {
  const std::string* bytes = TokenBytes(id);
  if (bytes == nullptr) return {};
  const std::string level = BytesToByteLevel(*bytes);
  // A token stored outside the byte alphabet keeps its own text.
  return TokenId(level) == id ? level : *bytes;
}

int32_t BpeModel::TokenId(std::string_view byte_level_text) const {
  auto it = text_to_id_.find(absl::string_view(byte_level_text.data(), byte_level_text.size()));
  return it == text_to_id_.end() ? -1 : it->second;
}

void BpeModel::MergeIds(std::vector<int32_t>* ids) const {
  const int n = static_cast<int>(ids->size());
  if (n < 2) return;
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
  };
  struct Candidate {
    int32_t rank;
    int32_t pos;  // index of the left symbol
    int32_t left_id;
    int32_t right_id;
    int32_t new_id;
    bool operator<(const Candidate& o) const {  // std::priority_queue is a max-heap: invert
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::vector<Symbol> symbols(n);
  for (int i = 0; i < n; ++i) symbols[i] = {(*ids)[i], i - 1, i + 1 < n ? i + 1 : -1};
  std::vector<Candidate> storage;
  storage.reserve(2 * n);
  std::priority_queue<Candidate> queue(std::less<Candidate>(), std::move(storage));
  auto push_pair = [&](int32_t left) {
    if (left < 0) return;
    const int32_t right = symbols[left].next;
    if (right < 0) return;
    auto it = merges_.find(PairKey(symbols[left].id, symbols[right].id));
    if (it != merges_.end()) {
      queue.push({it->second.rank, left, symbols[left].id, symbols[right].id, it->second.new_id});
    }
  };
  for (int i = 0; i + 1 < n; ++i) push_pair(i);
  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& left = symbols[c.pos];
    // Stale entries: the left symbol was merged away/changed, or its right neighbour changed.
    if (left.id != c.left_id || left.next < 0 || symbols[left.next].id != c.right_id) continue;
    const int32_t right = left.next;
    left.id = c.new_id;
    left.next = symbols[right].next;
    if (left.next >= 0) symbols[left.next].prev = c.pos;
    symbols[right].id = -1;  // dead
    push_pair(left.prev);
    push_pair(c.pos);
  }
  ids->clear();
  for (int i = 0; i >= 0; i = symbols[i].next) ids->push_back(symbols[i].id);
}

void BpeModel::Encode(std::string_view piece, std::vector<int32_t>* out) const {
  if (piece.empty()) return;
  if (piece.size() == 1) {
    out->push_back(byte_ids_[static_cast<uint8_t>(piece[0])]);
    return;
  }
  CacheShard& shard = cache_[absl::HashOf(absl::string_view(piece.data(), piece.size())) % kCacheShards];
  {
    absl::MutexLock lock(&shard.mu);
    auto it = shard.map.find(absl::string_view(piece.data(), piece.size()));
    if (it != shard.map.end()) {
      out->insert(out->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  ids.reserve(piece.size());
  for (char c : piece) ids.push_back(byte_ids_[static_cast<uint8_t>(c)]);
  MergeIds(&ids);
  out->insert(out->end(), ids.begin(), ids.end());
  absl::MutexLock lock(&shard.mu);
  if (shard.map.size() >= kCacheEntriesPerShard) shard.map.clear();  // bounded memory
  shard.map.emplace(std::string(piece), std::move(ids));
}

}  // namespace r1r::tokenizer
