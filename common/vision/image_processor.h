#pragma once
// Qwen2-VL / Qwen2.5-VL image preprocessing (transformers Qwen2VLImageProcessor, PIL path), torch-free:
//   RGB8 -> smart_resize -> Pillow bicubic resize -> x = float32(double(u8) / 255)
//   -> (x - mean[c]) / std[c] in float32 -> patchify.
// Patchify output (`pixel_values`): one row per patch, rows in merge order
//   (grid_t, grid_h/merge, grid_w/merge, merge, merge)   -- each 2x2 merge group is 4 consecutive rows
// and each row has channel * temporal_patch * patch * patch values in (c, t, py, px) order (the
// Conv3d weight's flatten order). A single image is repeated over the temporal_patch_size frames,
// so grid_t = 1. The LLM sees grid_t*grid_h*grid_w / merge^2 tokens for it.

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/vision/image.h"

namespace r1r::vision {

struct ImageProcessorOptions {
  int patch_size = 14;
  int temporal_patch_size = 2;
  int merge_size = 2;
  int64_t min_pixels = 56 * 56;
  int64_t max_pixels = 16384LL * 28 * 28;
  std::array<float, 3> image_mean = {0.48145466f, 0.4578275f, 0.40821073f};  // CLIP
  std::array<float, 3> image_std = {0.26862954f, 0.26130258f, 0.27577711f};

  int factor() const { return patch_size * merge_size; }
  int patch_dim() const { return 3 * temporal_patch_size * patch_size * patch_size; }  // 1176
};

// Reads preprocessor_config.json: min_pixels/max_pixels (or size.shortest_edge/longest_edge),
// patch_size, temporal_patch_size, merge_size, image_mean, image_std; absent keys keep defaults.
absl::StatusOr<ImageProcessorOptions> LoadImageProcessorOptions(const std::string& preprocessor_config_path);

struct ProcessedImage {
  std::vector<float> pixel_values;  // [num_patches, patch_dim] row-major
  int64_t num_patches = 0;
  int64_t patch_dim = 0;
  int64_t grid_t = 0, grid_h = 0, grid_w = 0;  // in patches
  int64_t num_image_tokens = 0;                // grid_t * grid_h * grid_w / merge^2
};

// Channel-first normalised floats [3, H, W] of an RGB8 image (rescale then normalise).
std::vector<float> RescaleAndNormalize(const RgbImage& image, const ImageProcessorOptions& options);

// Patchifies channel-first [3, height, width] floats; height and width must be multiples of
// patch_size * merge_size.
absl::StatusOr<ProcessedImage> Patchify(const std::vector<float>& chw, int height, int width,
                                        const ImageProcessorOptions& options);

// The whole pipeline for one image.
absl::StatusOr<ProcessedImage> PreprocessImage(const RgbImage& image, const ImageProcessorOptions& options = {});

}  // namespace r1r::vision
