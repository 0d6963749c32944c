// libFuzzer: Tokenizer::FromJson on arbitrary bytes (a tokenizer.json from a model directory or a Reload).
// Any result is fine; a crash, hang, leak or sanitizer report is not. A tokenizer that loads must also
// encode and decode a fixed string without crashing.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto tok = r1r::tokenizer::Tokenizer::FromJson(std::string_view(reinterpret_cast<const char*>(data), size));
  if (tok.ok()) {
    auto ids = (*tok)->Encode("Hello <|im_start|> wörld 123");
    if (ids.ok()) (void)(*tok)->Decode(*ids);
  }
  return 0;
}
