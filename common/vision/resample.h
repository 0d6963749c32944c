#pragma once
// Pillow-compatible bicubic resize of RGB8 images (PIL Image.resize(size, BICUBIC), no
// reducing_gap), a port of libImaging/Resample.c:
//  - separable: horizontal pass first (only over the source rows the vertical pass reads), then
//    vertical; the intermediate image is uint8, rounded and clamped;
//  - antialiased: on downscale the kernel support (2 for bicubic) is multiplied by the scale, and
//    the kernel is evaluated at (x - center + 0.5) / scale;
//  - cubic with a = -0.5; per-output weights normalised to sum 1 in double, then converted to
//    fixed point with 22 fraction bits (rounded half away from zero), accumulated in int32 from
//    a bias of 0.5 and clamped to 0..255 after the shift.
// Same size in and out is a copy.

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "common/vision/image.h"

namespace r1r::vision {

// Pillow's bicubic kernel (a = -0.5).
double BicubicKernel(double x);

// Fixed-point weights of one axis, as Pillow's precompute_coeffs + normalize_coeffs_8bpc:
// output i reads `count[i]` source samples starting at `first[i]`, with weights
// weights[i * kernel_size + k].
struct ResampleWeights {
  int kernel_size = 0;
  std::vector<int> first;
  std::vector<int> count;
  std::vector<int32_t> weights;
};
ResampleWeights ComputeBicubicWeights(int in_size, int out_size);

// InvalidArgument for empty images or non-positive sizes.
absl::StatusOr<RgbImage> ResizeBicubic(const RgbImage& image, int out_width, int out_height);

}  // namespace r1r::vision
