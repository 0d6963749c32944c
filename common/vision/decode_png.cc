// PNG decoding with libpng's classic API (setjmp error recovery); the simplified API cannot
// reproduce PIL's 16-bit conversions.
#include <png.h>

#include <csetjmp>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/vision/decode.h"

namespace r1r::vision {
namespace {

struct PngReader {
  std::string_view data;
  size_t offset = 0;
  char error[256] = {0};
};

void ReadCallback(png_structp png, png_bytep out, png_size_t length) {
  auto* reader = static_cast<PngReader*>(png_get_io_ptr(png));
  if (reader->offset + length > reader->data.size()) png_error(png, "truncated PNG data");
  std::memcpy(out, reader->data.data() + reader->offset, length);
  reader->offset += length;
}

void ErrorCallback(png_structp png, png_const_charp message) {
  auto* reader = static_cast<PngReader*>(png_get_error_ptr(png));
  std::snprintf(reader->error, sizeof(reader->error), "%s", message);
  png_longjmp(png, 1);
}

void WarningCallback(png_structp, png_const_charp) {}  // e.g. unknown chunks: PIL ignores them too

}  // namespace

absl::StatusOr<RgbImage> DecodePng(std::string_view data, const DecodeLimits& limits) {
  if (DetectFormat(data) != ImageFormat::kPng) return absl::InvalidArgumentError("not a PNG file");
  PngReader reader{data, 0};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &reader, ErrorCallback, WarningCallback);
  if (png == nullptr) return absl::ResourceExhaustedError("libpng: cannot allocate a reader");
  png_infop info = png_create_info_struct(png);
  if (info == nullptr) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    return absl::ResourceExhaustedError("libpng: cannot allocate info");
  }
  // Everything touched after setjmp and read after a longjmp must live outside this frame's
  // registers: the image is heap-owned and declared before setjmp.
  RgbImage image;
  std::vector<png_bytep> rows;
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    return absl::InvalidArgumentError(absl::StrCat("corrupt PNG: ", reader.error));
  }
  png_set_read_fn(png, &reader, ReadCallback);
  // libpng's own limits, a second line of defence behind the pixel-count check below.
  png_set_user_limits(png, 1u << 20, 1u << 20);
  png_read_info(png, info);
  const png_uint_32 width = png_get_image_width(png, info);
  const png_uint_32 height = png_get_image_height(png, info);
  const int64_t pixels = static_cast<int64_t>(width) * height;
  if (pixels > limits.max_pixels) {
    png_destroy_read_struct(&png, &info, nullptr);
    return absl::InvalidArgumentError(absl::StrCat("image of ", width, "x", height, " = ", pixels,
                                                   " pixels exceeds the limit of ", limits.max_pixels,
                                                   " (possible decompression bomb)"));
  }
  const int color_type = png_get_color_type(png, info);
  const int bit_depth = png_get_bit_depth(png, info);
  // 16-bit samples: PIL keeps the high byte for RGB/RGBA/LA (its ";16B" raw modes) but opens 16-bit
  // grayscale as mode "I", whose convert("RGB") clamps the value to 255. Reproduce both.
  const bool clamp_gray16 = bit_depth == 16 && color_type == PNG_COLOR_TYPE_GRAY;
  if (bit_depth == 16 && !clamp_gray16) png_set_strip_16(png);
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  png_set_strip_alpha(png);  // convert("RGB") drops alpha
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  const size_t bytes_per_sample = clamp_gray16 ? 2 : 1;
  if (png_get_rowbytes(png, info) != static_cast<size_t>(width) * 3 * bytes_per_sample) {
    png_destroy_read_struct(&png, &info, nullptr);
    return absl::InternalError("libpng did not produce 8-bit RGB rows");
  }
  image.width = static_cast<int>(width);
  image.height = static_cast<int>(height);
  image.pixels.resize(static_cast<size_t>(pixels) * 3 * bytes_per_sample);
  rows.resize(height);
  for (png_uint_32 y = 0; y < height; ++y) {
    rows[y] = image.pixels.data() + static_cast<size_t>(y) * width * 3 * bytes_per_sample;
  }
  png_read_image(png, rows.data());
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  if (clamp_gray16) {  // big-endian 16-bit samples -> min(value, 255), in place
    const size_t samples = static_cast<size_t>(pixels) * 3;
    for (size_t i = 0; i < samples; ++i) {
      const uint8_t hi = image.pixels[2 * i], lo = image.pixels[2 * i + 1];
      image.pixels[i] = hi != 0 ? 255 : lo;
    }
    image.pixels.resize(samples);
  }
  return image;
}

}  // namespace r1r::vision
