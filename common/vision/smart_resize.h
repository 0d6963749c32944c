#pragma once
// Qwen2-VL's smart_resize (transformers image_processing_qwen2_vl.py): the target size whose
// sides are multiples of `factor` (patch 14 * merge 2 = 28), close to the original aspect ratio,
// with min_pixels <= h*w <= max_pixels. Python's round() is round-half-to-even, so sides that are
// 14 mod 28 round to the even multiple (70 -> 56, not 84); we use nearbyint, never std::round.

#include <cstdint>

#include "absl/status/statusor.h"

namespace r1r::vision {

struct ResizedSize {
  int height = 0;
  int width = 0;
  bool operator==(const ResizedSize&) const = default;
};

inline constexpr int64_t kQwenMinPixels = 56 * 56;             // 3136, preprocessor_config.json
inline constexpr int64_t kQwenMaxPixels = 16384LL * 28 * 28;   // 12845056, preprocessor_config.json

// InvalidArgument when a side is below `factor` or the aspect ratio exceeds 200 (as HF raises).
absl::StatusOr<ResizedSize> SmartResize(int64_t height, int64_t width, int64_t factor = 28,
                                        int64_t min_pixels = kQwenMinPixels, int64_t max_pixels = kQwenMaxPixels);

}  // namespace r1r::vision
