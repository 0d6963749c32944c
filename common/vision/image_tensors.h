#pragma once
// Torch view of the image processor: the tensors Qwen2.5-VL's vision tower takes.
//   pixel_values   [sum of patches, 3*2*14*14] float32, images concatenated in order
//   image_grid_thw [num_images, 3] int64, rows (grid_t, grid_h, grid_w) in patches
// Only this header/its .cc see ATen; the rest of common/vision is torch-free.

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/vision/decode.h"
#include "common/vision/image_processor.h"

namespace r1r::vision {

struct ImageBatchTensors {
  at::Tensor pixel_values;
  at::Tensor image_grid_thw;
  std::vector<int64_t> image_tokens;  // <|image_pad|> count per image
};

absl::StatusOr<ImageBatchTensors> ToTensors(absl::Span<const ProcessedImage> images);

// Preprocesses already-decoded images.
absl::StatusOr<ImageBatchTensors> ProcessImages(absl::Span<const RgbImage> images,
                                                const ImageProcessorOptions& options = {});

// Reads, decodes and preprocesses image files (PNG or JPEG).
absl::StatusOr<ImageBatchTensors> LoadAndProcessImages(absl::Span<const std::string> paths,
                                                       const ImageProcessorOptions& options = {},
                                                       const DecodeLimits& limits = {});

}  // namespace r1r::vision
