#include "common/vision/image_processor.h"

#include <fstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/vision/resample.h"
#include "common/vision/smart_resize.h"
#include "nlohmann/json.hpp"

namespace r1r::vision {

absl::StatusOr<ImageProcessorOptions> LoadImageProcessorOptions(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open '", path, "'"));
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return absl::InvalidArgumentError(absl::StrCat(path, ": not a JSON object"));
  ImageProcessorOptions o;
  auto get_int = [&](const nlohmann::json& obj, const char* key, auto* out) -> absl::Status {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return absl::OkStatus();
    if (!it->is_number_integer()) return absl::InvalidArgumentError(absl::StrCat(path, ": '", key, "' is not an integer"));
    *out = it->template get<std::decay_t<decltype(*out)>>();
    return absl::OkStatus();
  };
  auto get_triple = [&](const char* key, std::array<float, 3>* out) -> absl::Status {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return absl::OkStatus();
    if (!it->is_array() || it->size() != 3 || !(*it)[0].is_number() || !(*it)[1].is_number() || !(*it)[2].is_number()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": '", key, "' must be three numbers"));
    }
    for (int c = 0; c < 3; ++c) (*out)[c] = (*it)[c].get<float>();
    return absl::OkStatus();
  };
  for (absl::Status s : {get_int(j, "patch_size", &o.patch_size), get_int(j, "temporal_patch_size", &o.temporal_patch_size),
                         get_int(j, "merge_size", &o.merge_size), get_int(j, "min_pixels", &o.min_pixels),
                         get_int(j, "max_pixels", &o.max_pixels), get_triple("image_mean", &o.image_mean),
                         get_triple("image_std", &o.image_std)}) {
    if (!s.ok()) return s;
  }
  // Newer saves put the limits in size {shortest_edge: min_pixels, longest_edge: max_pixels}.
  if (auto size = j.find("size"); size != j.end() && size->is_object()) {
    if (!j.contains("min_pixels")) {
      if (absl::Status s = get_int(*size, "shortest_edge", &o.min_pixels); !s.ok()) return s;
    }
    if (!j.contains("max_pixels")) {
      if (absl::Status s = get_int(*size, "longest_edge", &o.max_pixels); !s.ok()) return s;
    }
  }
  if (o.patch_size <= 0 || o.temporal_patch_size <= 0 || o.merge_size <= 0 || o.min_pixels <= 0 ||
      o.max_pixels < o.min_pixels) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": non-positive sizes or max_pixels < min_pixels"));
  }
  for (float s : o.image_std) {
    if (!(s > 0.0f)) return absl::InvalidArgumentError(absl::StrCat(path, ": image_std must be positive"));
  }
  return o;
}

std::vector<float> RescaleAndNormalize(const RgbImage& image, const ImageProcessorOptions& options) {
  const size_t plane = static_cast<size_t>(image.width) * image.height;
  std::vector<float> chw(plane * 3);
  // transformers: rescale in float64 then cast to float32; normalise in float32 with float32
  // mean/std. A 256-entry table per channel gives the same numbers.
  for (int c = 0; c < 3; ++c) {
    std::array<float, 256> table;
    for (int v = 0; v < 256; ++v) {
      const auto x = static_cast<float>(static_cast<double>(v) * (1.0 / 255.0));
      table[v] = (x - options.image_mean[c]) / options.image_std[c];
    }
    float* out = chw.data() + plane * c;
    for (size_t i = 0; i < plane; ++i) out[i] = table[image.pixels[i * 3 + c]];
  }
  return chw;
}

absl::StatusOr<ProcessedImage> Patchify(const std::vector<float>& chw, int height, int width,
                                        const ImageProcessorOptions& options) {
  const int p = options.patch_size, m = options.merge_size, tp = options.temporal_patch_size;
  if (height <= 0 || width <= 0 || height % (p * m) != 0 || width % (p * m) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("image of ", height, "x", width, " is not a multiple of ", p * m));
  }
  if (chw.size() != static_cast<size_t>(3) * height * width) {
    return absl::InvalidArgumentError("channel-first buffer does not match the image size");
  }
  ProcessedImage out;
  out.grid_t = 1;  // one image repeated over the temporal patch
  out.grid_h = height / p;
  out.grid_w = width / p;
  out.patch_dim = options.patch_dim();
  out.num_patches = out.grid_t * out.grid_h * out.grid_w;
  out.num_image_tokens = out.num_patches / (m * m);
  out.pixel_values.resize(static_cast<size_t>(out.num_patches) * out.patch_dim);
  const size_t plane = static_cast<size_t>(height) * width;
  float* row = out.pixel_values.data();
  // Row order (t, bh, bw, mh, mw); column order (c, t, py, px).
  for (int64_t bh = 0; bh < out.grid_h / m; ++bh) {
    for (int64_t bw = 0; bw < out.grid_w / m; ++bw) {
      for (int mh = 0; mh < m; ++mh) {
        for (int mw = 0; mw < m; ++mw) {
          const int64_t y0 = (bh * m + mh) * p, x0 = (bw * m + mw) * p;
          for (int c = 0; c < 3; ++c) {
            for (int t = 0; t < tp; ++t) {
              for (int py = 0; py < p; ++py) {
                const float* src = chw.data() + plane * c + static_cast<size_t>(y0 + py) * width + x0;
                std::copy(src, src + p, row);
                row += p;
              }
            }
          }
        }
      }
    }
  }
  return out;
}

absl::StatusOr<ProcessedImage> PreprocessImage(const RgbImage& image, const ImageProcessorOptions& options) {
  absl::StatusOr<ResizedSize> size =
      SmartResize(image.height, image.width, options.factor(), options.min_pixels, options.max_pixels);
  if (!size.ok()) return size.status();
  absl::StatusOr<RgbImage> resized = ResizeBicubic(image, size->width, size->height);
  if (!resized.ok()) return resized.status();
  return Patchify(RescaleAndNormalize(*resized, options), size->height, size->width, options);
}

}  // namespace r1r::vision
