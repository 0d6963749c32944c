#pragma once
// `r1r tokenize --tokenizer PATH [--decode]`: JSONL in, JSONL out, one line per line.
//   encode: {"text": "..."}  ->  {"ids": [...]}
//   decode: {"ids": [...]}   ->  {"text": "..."}      (special tokens kept)
// Blank input lines are skipped. The first bad line stops the run with InvalidArgument naming
// the line number; lines before it have already been written.

#include <istream>
#include <ostream>
#include <string>

#include "absl/status/status.h"

namespace r1r::tokenizer {

class Tokenizer;

absl::Status RunTokenizeCli(const std::string& tokenizer_path, bool decode, std::istream& in, std::ostream& out);
absl::Status RunTokenizeStream(const Tokenizer& tokenizer, bool decode, std::istream& in, std::ostream& out);

}  // namespace r1r::tokenizer
