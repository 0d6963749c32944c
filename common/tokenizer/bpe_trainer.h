#pragma once
// Trains a small byte-level BPE vocabulary (tiny models, the CPU demo) and writes it as a
// Hugging Face tokenizer.json with the same pipeline as Qwen2.5: NFC, the Qwen split regex,
// ByteLevel, BPE. The Qwen special tokens become added tokens with the last ids.
//
// Choice: <think>, </think>, <answer>, </answer> stay plain text, as in Qwen2.5's own vocabulary
// (only Qwen3 made <think> an added token), so rewards parse the same text either way. Put them
// in `special_tokens` to make them single tokens.
//
// Vocabulary layout: ids 0..255 are the 256 byte tokens (ordered by their byte-level code point,
// as GPT-2 does), then one id per merge in merge order, then the special tokens.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace r1r::tokenizer {

std::vector<std::string> QwenSpecialTokens();  // <|endoftext|>, <|im_start|>, ... <|video_pad|>

struct BpeTrainerOptions {
  int32_t vocab_size = 1024;  // bytes + merges + special tokens
  int64_t min_frequency = 2;  // stop merging when the best pair is rarer than this
  std::vector<std::string> special_tokens = QwenSpecialTokens();
};

// Returns the tokenizer.json text. Special tokens in the corpus are split out and not learnt.
// Merge choice: most frequent adjacent pair; ties go to the lexicographically smallest
// (left bytes, right bytes), so the result is deterministic.
absl::StatusOr<std::string> TrainBpeTokenizerJson(absl::Span<const std::string> corpus, const BpeTrainerOptions& options);

// Same, written to `path`.
absl::Status TrainBpeTokenizerFile(absl::Span<const std::string> corpus, const BpeTrainerOptions& options,
                                   const std::string& path);

}  // namespace r1r::tokenizer
