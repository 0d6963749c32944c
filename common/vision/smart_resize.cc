#include "common/vision/smart_resize.h"

#include <algorithm>
#include <cfenv>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace r1r::vision {
namespace {

// Python's round() on a float: ties to even. nearbyint honours the current rounding mode, which
// is FE_TONEAREST unless someone changed it; fix it for the call to be safe.
int64_t RoundHalfEven(double x) {
  const int saved = std::fegetround();
  std::fesetround(FE_TONEAREST);
  const double r = std::nearbyint(x);
  std::fesetround(saved);
  return static_cast<int64_t>(r);
}

}  // namespace

absl::StatusOr<ResizedSize> SmartResize(int64_t height, int64_t width, int64_t factor, int64_t min_pixels,
                                        int64_t max_pixels) {
  if (factor <= 0 || min_pixels <= 0 || max_pixels < min_pixels) {
    return absl::InvalidArgumentError(absl::StrCat("bad smart_resize parameters: factor ", factor, ", min_pixels ",
                                                   min_pixels, ", max_pixels ", max_pixels));
  }
  if (height < factor || width < factor) {
    return absl::InvalidArgumentError(absl::StrCat("image of ", height, "x", width,
                                                   " is smaller than the factor ", factor, " on a side"));
  }
  if (static_cast<double>(std::max(height, width)) / static_cast<double>(std::min(height, width)) > 200.0) {
    return absl::InvalidArgumentError(absl::StrCat("image of ", height, "x", width,
                                                   " has an aspect ratio above 200"));
  }
  const double h = static_cast<double>(height), w = static_cast<double>(width), f = static_cast<double>(factor);
  int64_t h_bar = RoundHalfEven(h / f) * factor;
  int64_t w_bar = RoundHalfEven(w / f) * factor;
  if (h_bar * w_bar > max_pixels) {
    const double beta = std::sqrt(h * w / static_cast<double>(max_pixels));
    h_bar = std::max(factor, static_cast<int64_t>(std::floor(h / beta / f)) * factor);
    w_bar = std::max(factor, static_cast<int64_t>(std::floor(w / beta / f)) * factor);
  } else if (h_bar * w_bar < min_pixels) {
    const double beta = std::sqrt(static_cast<double>(min_pixels) / (h * w));
    h_bar = static_cast<int64_t>(std::ceil(h * beta / f)) * factor;
    w_bar = static_cast<int64_t>(std::ceil(w * beta / f)) * factor;
  }
  return ResizedSize{static_cast<int>(h_bar), static_cast<int>(w_bar)};
}

}  // namespace r1r::vision
