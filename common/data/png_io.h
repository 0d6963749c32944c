// 8-bit RGB images and their PNG files (libpng), for the synthetic task.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace r1r::data {

struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // row-major, 3 bytes per pixel

  RgbImage() = default;
  RgbImage(int w, int h, uint8_t r, uint8_t g, uint8_t b);
  uint8_t* At(int x, int y) { return &pixels[(static_cast<size_t>(y) * width + x) * 3]; }
  const uint8_t* At(int x, int y) const { return &pixels[(static_cast<size_t>(y) * width + x) * 3]; }
};

absl::Status WritePng(const std::string& path, const RgbImage& image);
absl::StatusOr<RgbImage> ReadPng(const std::string& path);  // any 8-bit PNG, converted to RGB

}  // namespace r1r::data
