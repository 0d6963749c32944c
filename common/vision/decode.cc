#include "common/vision/decode.h"

#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

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
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open image '", path, "'"));
  const std::streamoff size = in.tellg();
  if (size > limits.max_file_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("image '", path, "' is ", size, " bytes, above the limit of ", limits.max_file_bytes));
  }
  in.seekg(0);
  std::string data(static_cast<size_t>(size), '\0');
  if (!in.read(data.data(), size)) return absl::DataLossError(absl::StrCat("cannot read image '", path, "'"));
  absl::StatusOr<RgbImage> image = DecodeImage(data, limits);
  if (!image.ok()) return absl::Status(image.status().code(), absl::StrCat(path, ": ", image.status().message()));
  return image;
}

}  // namespace r1r::vision
