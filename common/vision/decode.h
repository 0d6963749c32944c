#pragma once
// PNG (libpng) and JPEG (libjpeg) decoding into RGB8, matching PIL's `Image.open(f).convert("RGB")`
// for the common cases: palette and grayscale expand to RGB, alpha is dropped (not composited),
// 16-bit samples keep their high byte. EXIF orientation is not applied (neither does HF).
//
// Hostile input: a corrupt or truncated file is an InvalidArgument error; an image whose header
// declares more than `max_pixels` pixels is rejected before any pixel buffer is allocated
// (decompression bomb), like PIL's DecompressionBombError.

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/vision/image.h"

namespace r1r::vision {

struct DecodeLimits {
  // PIL raises DecompressionBombError above 2 * 89478485 pixels; we stop at PIL's warning level.
  int64_t max_pixels = 89'478'485;
  int64_t max_file_bytes = 256LL << 20;
};

enum class ImageFormat { kUnknown, kPng, kJpeg };

// Sniffs the format from the magic bytes.
ImageFormat DetectFormat(std::string_view data);

absl::StatusOr<RgbImage> DecodePng(std::string_view data, const DecodeLimits& limits = {});
absl::StatusOr<RgbImage> DecodeJpeg(std::string_view data, const DecodeLimits& limits = {});
// Dispatches on DetectFormat; InvalidArgument for anything else.
absl::StatusOr<RgbImage> DecodeImage(std::string_view data, const DecodeLimits& limits = {});
// Reads and decodes a file; NotFound when it cannot be opened.
absl::StatusOr<RgbImage> LoadImageFile(const std::string& path, const DecodeLimits& limits = {});

}  // namespace r1r::vision
