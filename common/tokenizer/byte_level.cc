#include "common/tokenizer/byte_level.h"

#include "common/tokenizer/utf8.h"

namespace r1r::tokenizer {
namespace {

struct ByteTables {
  std::array<char32_t, 256> byte_to_cp{};
  std::array<std::string, 256> byte_to_text;
  std::array<int16_t, 512> cp_to_byte{};  // all alphabet code points are < U+0144

  ByteTables() {
    cp_to_byte.fill(-1);
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      byte_to_cp[b] = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + extra++);
      cp_to_byte[byte_to_cp[b]] = static_cast<int16_t>(b);
      AppendUtf8(byte_to_cp[b], &byte_to_text[b]);
    }
  }
};

const ByteTables& Tables() {
  static const ByteTables* tables = new ByteTables();
  return *tables;
}

}  // namespace

char32_t ByteToCodePoint(uint8_t byte) { return Tables().byte_to_cp[byte]; }

const std::string& ByteToUnicodeText(uint8_t byte) { return Tables().byte_to_text[byte]; }

std::optional<uint8_t> CodePointToByte(char32_t cp) {
  if (cp >= Tables().cp_to_byte.size()) return std::nullopt;
  const int16_t b = Tables().cp_to_byte[cp];
  if (b < 0) return std::nullopt;
  return static_cast<uint8_t>(b);
}

std::string BytesToByteLevel(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += ByteToUnicodeText(static_cast<uint8_t>(c));
  return out;
}

std::optional<std::string> ByteLevelToBytes(std::string_view text) {
  if (!IsValidUtf8(text)) return std::nullopt;
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    const std::optional<uint8_t> b = CodePointToByte(NextCodePoint(text, &pos));
    if (!b) return std::nullopt;
    out.push_back(static_cast<char>(*b));
  }
  return out;
}

}  // namespace r1r::tokenizer
