// libFuzzer: PNG and JPEG decoding (libpng, libjpeg) of arbitrary bytes with the service limits, and a
// small pixel limit so bombs are refused quickly. A decoded image must have the size it claims.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/vision/decode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  r1r::vision::DecodeLimits limits;
  limits.max_pixels = 1 << 20;
  for (auto decode : {&r1r::vision::DecodePng, &r1r::vision::DecodeJpeg, &r1r::vision::DecodeImage}) {
    auto image = decode(bytes, limits);
    if (image.ok() && image->pixels.size() != static_cast<size_t>(image->width) * static_cast<size_t>(image->height) * 3) std::abort();
  }
  return 0;
}
