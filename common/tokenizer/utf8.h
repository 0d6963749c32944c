#pragma once
// Small UTF-8 helpers shared by the tokenizer: validation, code point iteration and Rust's
// String::from_utf8_lossy (what Hugging Face's ByteLevel decoder does with partial tokens).

#include <cstddef>
#include <string>
#include <string_view>

namespace r1r::tokenizer {

// True when `text` is well-formed UTF-8 (no overlongs, surrogates or code points > U+10FFFF).
bool IsValidUtf8(std::string_view text);

// Decodes the code point at text[*pos] and advances *pos. Requires valid UTF-8.
char32_t NextCodePoint(std::string_view text, size_t* pos);

// Appends the UTF-8 encoding of `cp` to `out`.
void AppendUtf8(char32_t cp, std::string* out);

// Replaces each maximal invalid subsequence with U+FFFD, exactly like Rust's from_utf8_lossy.
std::string Utf8Lossy(std::string_view bytes);

}  // namespace r1r::tokenizer
