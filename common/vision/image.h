#pragma once
// An 8-bit RGB image in row-major HWC order: pixel (y, x) channel c is
// pixels[(y * width + x) * 3 + c]. This is what PIL's `.convert("RGB")` gives the HF processor.

#include <cstdint>
#include <vector>

namespace r1r::vision {

struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // width * height * 3

  uint8_t at(int y, int x, int c) const { return pixels[(static_cast<size_t>(y) * width + x) * 3 + c]; }
};

}  // namespace r1r::vision
