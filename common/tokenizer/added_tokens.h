#pragma once
// Added (special) tokens are split out of the raw text before normalisation and
// pre-tokenisation, leftmost match first and the longest token at that position, like Hugging
// Face's AddedVocabulary (aho-corasick, LeftmostLongest). The lstrip/rstrip/single_word flags
// are not supported (all false in the Qwen vocabularies); the loader rejects them. The
// `normalized` flag is ignored: every added token is matched on the raw text, which is what HF
// does for Qwen's tokens (all normalized=false) and for ours.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace r1r::tokenizer {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false;  // skipped by Decode(skip_special_tokens=true)
};

// One segment of the input: either plain text (token_id < 0) or one added token.
struct Segment {
  std::string_view text;
  int32_t token_id = -1;
};

class AddedTokenMatcher {
 public:
  explicit AddedTokenMatcher(const std::vector<AddedToken>& tokens);

  // Splits `text` into plain-text and added-token segments, in order; empty text segments are
  // dropped.
  std::vector<Segment> Split(std::string_view text) const;

 private:
  struct Candidate {
    std::string content;
    int32_t id;
  };
  // Candidates by first byte, longest first, so the first hit at a position is the longest.
  std::array<std::vector<Candidate>, 256> by_first_byte_;
};

}  // namespace r1r::tokenizer
