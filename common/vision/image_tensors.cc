#include "common/vision/image_tensors.h"

#include <ATen/ATen.h>

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace r1r::vision {

absl::StatusOr<ImageBatchTensors> ToTensors(absl::Span<const ProcessedImage> images) {
  if (images.empty()) return absl::InvalidArgumentError("no images");
  int64_t rows = 0;
  const int64_t dim = images[0].patch_dim;
  for (const ProcessedImage& im : images) {
    if (im.patch_dim != dim) return absl::InvalidArgumentError("images with different patch sizes");
    rows += im.num_patches;
  }
  ImageBatchTensors out;
  out.pixel_values = at::empty({rows, dim}, at::TensorOptions().dtype(at::kFloat));
  out.image_grid_thw = at::empty({static_cast<int64_t>(images.size()), 3}, at::TensorOptions().dtype(at::kLong));
  float* dst = out.pixel_values.data_ptr<float>();
  int64_t* grid = out.image_grid_thw.data_ptr<int64_t>();
  for (const ProcessedImage& im : images) {
    std::memcpy(dst, im.pixel_values.data(), im.pixel_values.size() * sizeof(float));
    dst += im.pixel_values.size();
    *grid++ = im.grid_t;
    *grid++ = im.grid_h;
    *grid++ = im.grid_w;
    out.image_tokens.push_back(im.num_image_tokens);
  }
  return out;
}

absl::StatusOr<ImageBatchTensors> ProcessImages(absl::Span<const RgbImage> images,
                                                const ImageProcessorOptions& options) {
  std::vector<ProcessedImage> processed;
  processed.reserve(images.size());
  for (size_t i = 0; i < images.size(); ++i) {
    absl::StatusOr<ProcessedImage> p = PreprocessImage(images[i], options);
    if (!p.ok()) {
      return absl::Status(p.status().code(), absl::StrCat("image ", i, ": ", p.status().message()));
    }
    processed.push_back(*std::move(p));
  }
  return ToTensors(processed);
}

absl::StatusOr<ImageBatchTensors> LoadAndProcessImages(absl::Span<const std::string> paths,
                                                       const ImageProcessorOptions& options,
                                                       const DecodeLimits& limits) {
  std::vector<RgbImage> images;
  images.reserve(paths.size());
  for (const std::string& path : paths) {
    absl::StatusOr<RgbImage> image = LoadImageFile(path, limits);
    if (!image.ok()) return image.status();
    images.push_back(*std::move(image));
  }
  return ProcessImages(images, options);
}

}  // namespace r1r::vision
