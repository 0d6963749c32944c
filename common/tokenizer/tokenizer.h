#pragma once
// A Hugging Face `tokenizer.json` byte-level BPE tokenizer (the Qwen2 / Qwen2.5 family and the
// vocabularies written by BpeTrainer). Encoding pipeline, in Hugging Face's order:
//   added tokens split out of the raw text -> NFC -> pre-tokenizer regex (ICU, Isolated) ->
//   bytes -> BPE merges by rank.
// No BOS/EOS is added (Qwen's post-processor is ByteLevel, which changes offsets only).
// Thread-safe: Encode/Decode are const and may run concurrently.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/tokenizer/added_tokens.h"

namespace r1r::tokenizer {

class BpeModel;
class RegexSplitter;

class Tokenizer {
 public:
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromFile(const std::string& path);
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromJson(std::string_view json);
  ~Tokenizer();

  // Text (UTF-8) -> ids. InvalidArgument for malformed UTF-8.
  absl::StatusOr<std::vector<int32_t>> Encode(std::string_view text) const;

  // Ids -> text. Partial UTF-8 sequences become U+FFFD (Hugging Face's lossy ByteLevel decode).
  // OutOfRange for an id that is in neither the vocabulary nor the added tokens.
  absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids, bool skip_special_tokens = false) const;

  // Id of an added token's content or of a byte-level vocabulary entry ("Ġthe"); nullopt if absent.
  std::optional<int32_t> TokenToId(std::string_view token) const;
  // The token text of `id` (added-token content or byte-level text); nullopt if absent.
  std::optional<std::string> IdToToken(int32_t id) const;

  // One more than the largest id (vocabulary and added tokens), i.e. the minimum embedding rows.
  int32_t vocab_size() const { return vocab_size_; }
  const std::vector<AddedToken>& added_tokens() const { return added_tokens_; }

 private:
  Tokenizer();
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromJsonUnchecked(std::string_view json);
  void EncodePlain(std::string_view text, std::vector<int32_t>* ids) const;

  std::unique_ptr<BpeModel> model_;
  std::vector<std::unique_ptr<RegexSplitter>> splitters_;  // applied in sequence
  bool nfc_ = false;
  std::vector<AddedToken> added_tokens_;
  absl::flat_hash_map<int32_t, size_t> added_by_id_;  // id -> index in added_tokens_
  std::unique_ptr<AddedTokenMatcher> added_matcher_;
  int32_t vocab_size_ = 0;
};

}  // namespace r1r::tokenizer
