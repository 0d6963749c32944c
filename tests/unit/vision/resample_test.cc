#include "common/vision/resample.h"

#include <gtest/gtest.h>

#include "common/vision/decode.h"
#include "tests/unit/vision/vision_test_util.h"

namespace r1r::vision {
namespace {

RgbImage Filled(int w, int h, uint8_t r, uint8_t g, uint8_t b) {
  RgbImage im{w, h, {}};
  for (int i = 0; i < w * h; ++i) im.pixels.insert(im.pixels.end(), {r, g, b});
  return im;
}

TEST(vision, BicubicKernelValues) {
  // a = -0.5 cubic at the sample points a 2x downscale uses.
  EXPECT_DOUBLE_EQ(BicubicKernel(0.0), 1.0);
  EXPECT_DOUBLE_EQ(BicubicKernel(0.25), 0.8671875);
  EXPECT_DOUBLE_EQ(BicubicKernel(-0.75), 0.2265625);
  EXPECT_DOUBLE_EQ(BicubicKernel(1.25), -0.0703125);
  EXPECT_DOUBLE_EQ(BicubicKernel(1.75), -0.0234375);
  EXPECT_DOUBLE_EQ(BicubicKernel(2.0), 0.0);
}

TEST(vision, ResizeConstantImageStaysConstant) {
  const RgbImage in = Filled(37, 23, 200, 17, 255);
  for (auto [w, h] : {std::pair{10, 7}, {80, 50}, {37, 5}, {3, 23}, {111, 1}}) {
    absl::StatusOr<RgbImage> out = ResizeBicubic(in, w, h);
    ASSERT_TRUE(out.ok());
    ASSERT_EQ(out->width, w);
    ASSERT_EQ(out->height, h);
    for (int i = 0; i < w * h; ++i) {
      ASSERT_EQ(out->pixels[i * 3 + 0], 200);
      ASSERT_EQ(out->pixels[i * 3 + 1], 17);
      ASSERT_EQ(out->pixels[i * 3 + 2], 255);
    }
  }
}

TEST(vision, ResizeHalvesCheckerboard) {
  // 1-pixel checkerboard, 255 where x+y is odd. Halving: support 4, taps at offsets
  // -3.5..3.5 / 2 with weights (normalised by 2) -0.01171875, -0.03515625, 0.11328125, 0.43359375,
  // mirrored. Odd and even taps each sum to exactly 0.5 (exact in fixed point), so the interior is
  // 2^21 + 255 * 2^21 >> 22 = 128. At the corner only 5 taps remain (weights renormalised by
  // 1.8671875): the rows give 109 and 146, and the vertical pass gives 125 (worked out by hand).
  RgbImage in{16, 16, std::vector<uint8_t>(16 * 16 * 3)};
  for (int y = 0; y < 16; ++y)
    for (int x = 0; x < 16; ++x)
      for (int c = 0; c < 3; ++c) in.pixels[(y * 16 + x) * 3 + c] = (x + y) % 2 ? 255 : 0;
  absl::StatusOr<RgbImage> out = ResizeBicubic(in, 8, 8);
  ASSERT_TRUE(out.ok());
  for (int y = 2; y <= 5; ++y)
    for (int x = 2; x <= 5; ++x) EXPECT_EQ(out->at(y, x, 0), 128) << y << "," << x;
  EXPECT_EQ(out->at(0, 0, 1), 125);
}

TEST(vision, ResizeSameSizeIsCopy) {
  RgbImage in{3, 2, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18}};
  absl::StatusOr<RgbImage> out = ResizeBicubic(in, 3, 2);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->pixels, in.pixels);
  EXPECT_FALSE(ResizeBicubic(in, 0, 2).ok());
  EXPECT_FALSE(ResizeBicubic(RgbImage{}, 2, 2).ok());
}

TEST(vision, ResizeMatchesPillow) {
  // Golden outputs of PIL 9.4 Image.resize(size, BICUBIC) (make_fixtures.py).
  absl::StatusOr<RgbImage> base = LoadImageFile(testing::TestData("gradient_83x61.png"));
  ASSERT_TRUE(base.ok()) << base.status();
  const auto expected = testing::Expected();
  ASSERT_GE(expected["resize"].size(), 7u);
  for (const auto& r : expected["resize"]) {
    const int w = r["width"], h = r["height"];
    absl::StatusOr<RgbImage> out = ResizeBicubic(*base, w, h);
    ASSERT_TRUE(out.ok());
    const std::vector<uint8_t> want = testing::ReadBytes(testing::TestData(r["file"]));
    ASSERT_EQ(out->pixels.size(), want.size()) << w << "x" << h;
    size_t diffs = 0;
    for (size_t i = 0; i < want.size(); ++i) diffs += out->pixels[i] != want[i];
    EXPECT_EQ(diffs, 0u) << "resize to " << w << "x" << h << " differs from Pillow in " << diffs << " values";
  }
}

}  // namespace
}  // namespace r1r::vision
