// libFuzzer: Encode of arbitrary text with a small byte-level BPE tokenizer (NFC, Qwen's pre-tokenizer
// regex, added tokens); valid UTF-8 must round-trip through Decode exactly.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/tokenizer/byte_level.h"
#include "common/tokenizer/tokenizer.h"
#include "common/tokenizer/utf8.h"

namespace {

const r1r::tokenizer::Tokenizer& Tiny() {
  static const auto* tok = [] {
    using r1r::tokenizer::ByteToUnicodeText;
    nlohmann::json vocab = nlohmann::json::object();
    int id = 0;
    for (int b = 0; b < 256; ++b) vocab[ByteToUnicodeText(static_cast<uint8_t>(b))] = id++;
    nlohmann::json merges = nlohmann::json::array();
    for (const auto& [a, b] : std::initializer_list<std::pair<const char*, const char*>>{
             {"a", "a"}, {"b", "c"}, {"a", "bc"}, {"aa", "a"}, {"Ġ", "a"}, {"Ġ", "t"}, {"h", "e"}}) {
      vocab[std::string(a) + b] = id++;
      merges.push_back(std::string(a) + " " + b);
    }
    const nlohmann::json j = {
        {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}},
        {"normalizer", {{"type", "NFC"}}},
        {"pre_tokenizer",
         {{"type", "Sequence"},
          {"pretokenizers",
           {{{"type", "Split"},
             {"pattern",
              {{"Regex",
                R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}}},
             {"behavior", "Isolated"},
             {"invert", false}},
            {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}}},
        {"added_tokens",
         {{{"id", id}, {"content", "<|im_start|>"}, {"special", true}},
          {{"id", id + 1}, {"content", "<|im_end|>"}, {"special", true}}}}};
    auto t = r1r::tokenizer::Tokenizer::FromJson(j.dump());
    if (!t.ok()) std::abort();
    return t->release();
  }();
  return *tok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto ids = Tiny().Encode(text);
  if (!r1r::tokenizer::IsValidUtf8(text)) return 0;  // rejected, fine
  if (!ids.ok()) std::abort();                         // valid UTF-8 must encode
  auto back = Tiny().Decode(*ids);
  // NFC may change the text; the decoded text must re-encode to the same ids.
  if (!back.ok()) std::abort();
  auto again = Tiny().Encode(*back);
  if (!again.ok() || *again != *ids) std::abort();
  return 0;
}
