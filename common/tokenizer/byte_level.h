#pragma once
// GPT-2 byte-level alphabet: every byte maps to one printable Unicode code point so that BPE
// vocabularies can be stored as text. Printable bytes 33..126, 161..172, 174..255 map to
// themselves; the other 68 bytes map to U+0100 + n in byte order (n = 0, 1, ...).

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace r1r::tokenizer {

// The code point a byte is written as in a byte-level vocabulary.
char32_t ByteToCodePoint(uint8_t byte);

// The UTF-8 text of ByteToCodePoint(byte), e.g. 0x20 -> "Ġ".
const std::string& ByteToUnicodeText(uint8_t byte);

// Inverse of ByteToCodePoint; nullopt for code points outside the alphabet.
std::optional<uint8_t> CodePointToByte(char32_t cp);

// Maps raw bytes to their byte-level text ("hi there" -> "hiĠthere").
std::string BytesToByteLevel(std::string_view bytes);

// Inverse of BytesToByteLevel. nullopt when `text` is not valid UTF-8 or holds a code point
// outside the alphabet (Hugging Face's ByteLevel decoder then keeps the token's own bytes).
std::optional<std::string> ByteLevelToBytes(std::string_view text);

}  // namespace r1r::tokenizer
