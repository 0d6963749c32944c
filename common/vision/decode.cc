#include "common/vision/decode.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/files/paths.h"

namespace r1r::vision {

ImageFormat DetectFormat(std::string_view data) {
  if (data.size() >= 8 && data.substr(0, 8) == std::string_view("\x89PNG\r\n\x1a\n", 8)) return ImageFormat::kPng;
  if (data.size() >= 3 && data.substr(0, 3) == std::string_view("\xFF\xD8\xFF", 3)) return ImageFormat::kJpeg;
  return ImageFormat::kUnknown;
}

absl::StatusOr<RgbImage> DecodeImage(std::string_view data, const DecodeLimits& limits) {
  switch (DetectFormat(data)) {
    case ImageFormat::kPng:
      return DecodePng(data, limits);
    case ImageFormat::kJpeg:
      return DecodeJpeg(data, limits);
    case ImageFormat::kUnknown:
      break;
  }
  return absl::InvalidArgumentError("unsupported image format: expected PNG or JPEG magic bytes");
}

absl::StatusOr<RgbImage> LoadImageFile(const std::string& path, const DecodeLimits& limits) {
  // Only a regular file, its size checked before reading: a FIFO or /dev/zero neither blocks nor fills memory.
  absl::StatusOr<std::string> data =
      files::ReadRegularFile(path, limits.max_file_bytes > 0 ? static_cast<uint64_t>(limits.max_file_bytes) : 0);
  if (!data.ok()) return absl::Status(data.status().code(), absl::StrCat("image ", data.status().message()));
  absl::StatusOr<RgbImage> image = DecodeImage(*data, limits);
  if (!image.ok()) return absl::Status(image.status().code(), absl::StrCat(path, ": ", image.status().message()));
  return image;
}

}  // namespace r1r::vision
