#include "common/vision/resample.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace r1r::vision {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // Pillow's PRECISION_BITS
constexpr double kBicubicSupport = 2.0;

inline uint8_t Clip8(int32_t v) {
  if (v >= (1 << (kPrecisionBits + 8))) return 255;
  if (v <= 0) return 0;
  return static_cast<uint8_t>(v >> kPrecisionBits);
}

// Horizontal pass over source rows [row_begin, row_begin + out.height).
void ResampleHorizontal(const RgbImage& in, int row_begin, const ResampleWeights& w, RgbImage* out) {
  for (int y = 0; y < out->height; ++y) {
    const uint8_t* src = in.pixels.data() + static_cast<size_t>(y + row_begin) * in.width * 3;
    uint8_t* dst = out->pixels.data() + static_cast<size_t>(y) * out->width * 3;
    for (int x = 0; x < out->width; ++x) {
      const int32_t* k = &w.weights[static_cast<size_t>(x) * w.kernel_size];
      const uint8_t* s = src + static_cast<size_t>(w.first[x]) * 3;
      int32_t r = 1 << (kPrecisionBits - 1), g = r, b = r;
      for (int i = 0; i < w.count[x]; ++i) {
        r += s[i * 3 + 0] * k[i];
        g += s[i * 3 + 1] * k[i];
        b += s[i * 3 + 2] * k[i];
      }
      dst[x * 3 + 0] = Clip8(r);
      dst[x * 3 + 1] = Clip8(g);
      dst[x * 3 + 2] = Clip8(b);
    }
  }
}

void ResampleVertical(const RgbImage& in, const ResampleWeights& w, int row_shift, RgbImage* out) {
  const size_t stride = static_cast<size_t>(in.width) * 3;
  // Row-at-a-time accumulation (same integer sums as Pillow's per-pixel loop, in a
  // vectorisable order).
  std::vector<int32_t> acc(stride);
  for (int y = 0; y < out->height; ++y) {
    const int32_t* k = &w.weights[static_cast<size_t>(y) * w.kernel_size];
    const uint8_t* src = in.pixels.data() + static_cast<size_t>(w.first[y] - row_shift) * stride;
    std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
    for (int i = 0; i < w.count[y]; ++i) {
      const uint8_t* row = src + i * stride;
      const int32_t ki = k[i];
      for (size_t xc = 0; xc < stride; ++xc) acc[xc] += row[xc] * ki;
    }
    uint8_t* dst = out->pixels.data() + static_cast<size_t>(y) * stride;
    for (size_t xc = 0; xc < stride; ++xc) dst[xc] = Clip8(acc[xc]);
  }
}

}  // namespace

double BicubicKernel(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

ResampleWeights ComputeBicubicWeights(int in_size, int out_size) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filter_scale = scale < 1.0 ? 1.0 : scale;  // antialias only when shrinking
  const double support = kBicubicSupport * filter_scale;
  ResampleWeights w;
  w.kernel_size = static_cast<int>(std::ceil(support)) * 2 + 1;
  w.first.resize(out_size);
  w.count.resize(out_size);
  w.weights.assign(static_cast<size_t>(out_size) * w.kernel_size, 0);
  std::vector<double> k(w.kernel_size);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const double ss = 1.0 / filter_scale;
    // C casts truncate toward zero, as in Pillow.
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double total = 0.0;
    for (int x = 0; x < xmax; ++x) {
      k[x] = BicubicKernel((x + xmin - center + 0.5) * ss);
      total += k[x];
    }
    for (int x = 0; x < xmax; ++x) {
      const double v = total != 0.0 ? k[x] / total : k[x];
      // normalize_coeffs_8bpc: round half away from zero into fixed point.
      w.weights[static_cast<size_t>(xx) * w.kernel_size + x] =
          v < 0 ? static_cast<int32_t>(-0.5 + v * (1 << kPrecisionBits))
                : static_cast<int32_t>(0.5 + v * (1 << kPrecisionBits));
    }
    w.first[xx] = xmin;
    w.count[xx] = xmax;
  }
  return w;
}

absl::StatusOr<RgbImage> ResizeBicubic(const RgbImage& image, int out_width, int out_height) {
  if (image.width <= 0 || image.height <= 0 ||
      image.pixels.size() != static_cast<size_t>(image.width) * image.height * 3) {
    return absl::InvalidArgumentError("resize of an empty or inconsistent image");
  }
  if (out_width <= 0 || out_height <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("bad resize target ", out_width, "x", out_height));
  }
  const bool need_horizontal = out_width != image.width;
  const bool need_vertical = out_height != image.height;
  if (!need_horizontal && !need_vertical) return image;
  const ResampleWeights vert = ComputeBicubicWeights(image.height, out_height);
  // Source rows the vertical pass reads; the horizontal pass only produces those.
  const int row_first = vert.first[0];
  const int row_last = vert.first[out_height - 1] + vert.count[out_height - 1];
  RgbImage horizontal;
  const RgbImage* src = &image;
  int row_shift = 0;
  if (need_horizontal) {
    const ResampleWeights horiz = ComputeBicubicWeights(image.width, out_width);
    horizontal.width = out_width;
    horizontal.height = row_last - row_first;
    horizontal.pixels.resize(static_cast<size_t>(horizontal.width) * horizontal.height * 3);
    ResampleHorizontal(image, row_first, horiz, &horizontal);
    src = &horizontal;
    row_shift = row_first;
  }
  if (!need_vertical) return horizontal;
  RgbImage out;
  out.width = src->width;
  out.height = out_height;
  out.pixels.resize(static_cast<size_t>(out.width) * out.height * 3);
  ResampleVertical(*src, vert, row_shift, &out);
  return out;
}

}  // namespace r1r::vision
