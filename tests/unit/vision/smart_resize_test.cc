#include "common/vision/smart_resize.h"

#include <gtest/gtest.h>

namespace r1r::vision {
namespace {

ResizedSize Resize(int64_t h, int64_t w, int64_t max_pixels = kQwenMaxPixels) {
  absl::StatusOr<ResizedSize> s = SmartResize(h, w, 28, kQwenMinPixels, max_pixels);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.value_or(ResizedSize{});
}

TEST(vision, SmartResizeWorkedExamples) {
  // From the reference (checked against a Python copy of transformers' smart_resize).
  EXPECT_EQ(Resize(480, 640), (ResizedSize{476, 644}));
  EXPECT_EQ(Resize(1080, 1920), (ResizedSize{1092, 1932}));
  EXPECT_EQ(Resize(1080, 1920, 28 * 28 * 1280), (ResizedSize{728, 1316}));
  EXPECT_EQ(Resize(61, 83), (ResizedSize{56, 84}));
}

TEST(vision, SmartResizeTies) {
  // Sides that are 14 mod 28 are exact .5 ties: Python rounds to the even multiple.
  EXPECT_EQ(Resize(70, 70), (ResizedSize{56, 56}));      // 2.5 -> 2 (std::round would give 84)
  EXPECT_EQ(Resize(42, 98), (ResizedSize{56, 112}));     // 1.5 -> 2, 3.5 -> 4
  EXPECT_EQ(Resize(126, 154), (ResizedSize{112, 168}));  // 4.5 -> 4, 5.5 -> 6
  EXPECT_EQ(Resize(182, 210), (ResizedSize{168, 224}));  // 6.5 -> 6, 7.5 -> 8
}

TEST(vision, SmartResizeMinAndMaxPixels) {
  // 28x28 is below min_pixels 3136: beta = 2 -> ceil(2) * 28 = 56.
  EXPECT_EQ(Resize(28, 28), (ResizedSize{56, 56}));
  // 30x200: round -> 28x196 = 5488 >= 3136, kept.
  EXPECT_EQ(Resize(30, 200), (ResizedSize{28, 196}));
  // 10000x10000 above max: 10000 / sqrt(1e8 / 12845056) / 28 is 127.99999... in doubles, so
  // floor gives 127 (Python agrees; the exact value would be 128).
  const ResizedSize big = Resize(10000, 10000);
  EXPECT_EQ(big.height, big.width);
  EXPECT_LE(static_cast<int64_t>(big.height) * big.width, kQwenMaxPixels);
  EXPECT_EQ(big.height % 28, 0);
  EXPECT_EQ(Resize(10000, 10000), (ResizedSize{3556, 3556}));
  EXPECT_EQ(Resize(4000, 3000, 1003520), (ResizedSize{1148, 840}));
}

TEST(vision, SmartResizeRejectsBadShapes) {
  EXPECT_EQ(SmartResize(27, 100).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SmartResize(28, 5800).status().code(), absl::StatusCode::kInvalidArgument);  // ratio 207
  EXPECT_TRUE(SmartResize(28, 5600).ok());                                                // ratio 200
}

}  // namespace
}  // namespace r1r::vision
