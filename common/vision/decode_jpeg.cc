// JPEG decoding with libjpeg(-turbo) defaults (ISLOW DCT, fancy upsampling): the same settings
// PIL's JpegDecoder uses, so pixels match PIL built against the same library.
#include <csetjmp>
#include <cstddef>
#include <cstdio>

// jpeglib.h needs size_t and FILE declared first.
#include <jpeglib.h>
#include <jerror.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/vision/decode.h"

namespace r1r::vision {
namespace {

struct ErrorManager {
  jpeg_error_mgr base;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX] = {0};
  bool truncated = false;
};

void ErrorExit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

void EmitMessage(j_common_ptr cinfo, int level) {
  // Level -1 is a warning. libjpeg pads a truncated stream with gray and only warns; PIL refuses
  // such files ("image file is truncated"), so we do too.
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) reinterpret_cast<ErrorManager*>(cinfo->err)->truncated = true;
}

}  // namespace

absl::StatusOr<RgbImage> DecodeJpeg(std::string_view data, const DecodeLimits& limits) {
  if (DetectFormat(data) != ImageFormat::kJpeg) return absl::InvalidArgumentError("not a JPEG file");
  jpeg_decompress_struct cinfo;
  ErrorManager err;
  cinfo.err = jpeg_std_error(&err.base);
  err.base.error_exit = ErrorExit;
  err.base.emit_message = EmitMessage;
  RgbImage image;  // declared before setjmp; only touched through memory afterwards
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    return absl::InvalidArgumentError(absl::StrCat("corrupt JPEG: ", err.message));
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(data.data()), static_cast<unsigned long>(data.size()));
  jpeg_read_header(&cinfo, TRUE);
  const int64_t pixels = static_cast<int64_t>(cinfo.image_width) * cinfo.image_height;
  if (pixels > limits.max_pixels) {
    jpeg_destroy_decompress(&cinfo);
    return absl::InvalidArgumentError(absl::StrCat("image of ", cinfo.image_width, "x", cinfo.image_height, " = ",
                                                   pixels, " pixels exceeds the limit of ", limits.max_pixels,
                                                   " (possible decompression bomb)"));
  }
  if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
    jpeg_destroy_decompress(&cinfo);
    return absl::UnimplementedError("CMYK/YCCK JPEG images are not supported; convert them to RGB");
  }
  cinfo.out_color_space = JCS_RGB;  // grayscale is replicated to RGB, as PIL's L -> RGB
  jpeg_start_decompress(&cinfo);
  if (cinfo.output_components != 3) {
    jpeg_destroy_decompress(&cinfo);
    return absl::InternalError("libjpeg did not produce 3-channel output");
  }
  image.width = static_cast<int>(cinfo.output_width);
  image.height = static_cast<int>(cinfo.output_height);
  image.pixels.resize(static_cast<size_t>(image.width) * image.height * 3);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = image.pixels.data() + static_cast<size_t>(cinfo.output_scanline) * image.width * 3;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  const bool truncated = err.truncated;
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  if (truncated) return absl::InvalidArgumentError("corrupt JPEG: image file is truncated");
  return image;
}

}  // namespace r1r::vision
