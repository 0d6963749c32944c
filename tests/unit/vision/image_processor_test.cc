#include "common/vision/image_processor.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>

#include "common/vision/decode.h"
#include "tests/unit/vision/vision_test_util.h"

namespace r1r::vision {
namespace {

TEST(vision, RescaleAndNormalizeClip) {
  RgbImage im{2, 1, {0, 128, 255, 255, 0, 10}};
  const std::vector<float> chw = RescaleAndNormalize(im, {});
  ASSERT_EQ(chw.size(), 6u);
  // (0/255 - 0.48145466) / 0.26862954 = -1.7922626
  EXPECT_NEAR(chw[0], -1.7922626f, 1e-6);
  // channel 0, pixel 1: (1 - 0.48145466) / 0.26862954 = 1.9303361
  EXPECT_NEAR(chw[1], 1.9303361f, 1e-6);
  // channel 1, pixel 0: (128/255 - 0.4578275) / 0.26130258 = 0.16899...
  EXPECT_NEAR(chw[2], (128.0 / 255.0 - 0.4578275) / 0.26130258, 1e-6);
  EXPECT_NEAR(chw[5], (10.0 / 255.0 - 0.40821073) / 0.27577711, 1e-6);
}

TEST(vision, PatchifyMergeOrder) {
  // 56x56 image whose value encodes (c, y, x) = c*10000 + y*100 + x: grid 4x4, 2x2 merge groups.
  const int h = 56, w = 56;
  std::vector<float> chw(3 * h * w);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) chw[(c * h + y) * w + x] = static_cast<float>(c * 10000 + y * 100 + x);
  absl::StatusOr<ProcessedImage> p = Patchify(chw, h, w, {});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->num_patches, 16);
  EXPECT_EQ(p->patch_dim, 1176);
  EXPECT_EQ(p->grid_t, 1);
  EXPECT_EQ(p->grid_h, 4);
  EXPECT_EQ(p->grid_w, 4);
  EXPECT_EQ(p->num_image_tokens, 4);
  auto value = [&](int row, int c, int t, int py, int px) {
    return p->pixel_values[static_cast<size_t>(row) * 1176 + ((c * 2 + t) * 14 + py) * 14 + px];
  };
  // Rows: (bh, bw, mh, mw). Row 0 = patch (0,0); 1 = (0,1); 2 = (1,0); 3 = (1,1); 4 = patch (0,2).
  EXPECT_EQ(value(0, 0, 0, 0, 0), 0);
  EXPECT_EQ(value(0, 0, 0, 0, 13), 13);
  EXPECT_EQ(value(1, 0, 0, 0, 0), 14);           // x0 = 14
  EXPECT_EQ(value(2, 0, 0, 0, 0), 1400);         // y0 = 14
  EXPECT_EQ(value(3, 1, 1, 3, 5), 10000 + 1700 + 19);
  EXPECT_EQ(value(4, 0, 0, 0, 0), 28);           // next merge group to the right
  EXPECT_EQ(value(8, 2, 0, 13, 13), 20000 + 2800 + 100 * 13 + 13);  // group (1,0): y0 = 28
  EXPECT_EQ(value(15, 2, 1, 13, 13), 20000 + 5500 + 55);           // last pixel
  // The image is repeated over the temporal patch: t = 0 and t = 1 agree everywhere.
  for (int row = 0; row < 16; ++row)
    for (int c = 0; c < 3; ++c)
      for (int py = 0; py < 14; ++py)
        for (int px = 0; px < 14; ++px) ASSERT_EQ(value(row, c, 0, py, px), value(row, c, 1, py, px));
  EXPECT_FALSE(Patchify(chw, 42, 56, {}).ok());
}

TEST(vision, PreprocessMatchesTransformers) {
  // pixel_values from a numpy copy of Qwen2VLImageProcessor's PIL path (make_fixtures.py).
  const auto expected = testing::Expected();
  for (const auto& [name, meta] : expected["preprocess"].items()) {
    absl::StatusOr<RgbImage> im = LoadImageFile(testing::TestData(name));
    ASSERT_TRUE(im.ok());
    absl::StatusOr<ProcessedImage> p = PreprocessImage(*im, {});
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_EQ(p->grid_t, meta["grid_thw"][0].get<int64_t>());
    EXPECT_EQ(p->grid_h, meta["grid_thw"][1].get<int64_t>());
    EXPECT_EQ(p->grid_w, meta["grid_thw"][2].get<int64_t>());
    const std::vector<float> want = testing::ReadFloats(testing::TestData(name + ".pixel_values.f32"));
    ASSERT_EQ(p->pixel_values.size(), want.size()) << name;
    float max_diff = 0;
    for (size_t i = 0; i < want.size(); ++i) max_diff = std::max(max_diff, std::abs(p->pixel_values[i] - want[i]));
    EXPECT_EQ(max_diff, 0.0f) << name;  // same uint8 resize, same float32 arithmetic
  }
}

TEST(vision, TinyImageIsUpscaledToMinPixels) {
  RgbImage im{30, 28, std::vector<uint8_t>(30 * 28 * 3, 90)};
  absl::StatusOr<ProcessedImage> p = PreprocessImage(im, {});
  ASSERT_TRUE(p.ok());
  // 28x30 rounds to 28x28 < min_pixels: beta = sqrt(3136 / 840) = 1.932, ceil(1.932) = 2 rows
  // of 28 and ceil(30 * 1.932 / 28) = ceil(2.07) = 3 columns -> 56x84.
  EXPECT_EQ(p->grid_h, 4);
  EXPECT_EQ(p->grid_w, 6);
  RgbImage too_small{20, 100, std::vector<uint8_t>(20 * 100 * 3, 0)};
  EXPECT_EQ(PreprocessImage(too_small, {}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(vision, LoadPreprocessorConfig) {
  const std::string path = std::string(R1R_BINARY_DIR) + "/vision_preprocessor_config_test.json";
  {
    std::ofstream out(path);
    out << R"({"min_pixels": 3136, "max_pixels": 1003520, "patch_size": 14, "temporal_patch_size": 2,
              "merge_size": 2, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.5, 1.0],
              "image_processor_type": "Qwen2VLImageProcessor"})";
  }
  absl::StatusOr<ImageProcessorOptions> o = LoadImageProcessorOptions(path);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->max_pixels, 1003520);
  EXPECT_EQ(o->image_std[2], 1.0f);
  {
    std::ofstream out(path);
    out << R"({"size": {"shortest_edge": 100352, "longest_edge": 200704}, "image_std": [0, 1, 1]})";
  }
  EXPECT_FALSE(LoadImageProcessorOptions(path).ok());  // zero std
  {
    std::ofstream out(path);
    out << R"({"size": {"shortest_edge": 100352, "longest_edge": 200704}})";
  }
  o = LoadImageProcessorOptions(path);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->min_pixels, 100352);
  EXPECT_EQ(o->max_pixels, 200704);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace r1r::vision
