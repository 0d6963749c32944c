#include "common/vision/decode.h"

#include <gtest/gtest.h>

#include "tests/unit/vision/vision_test_util.h"

namespace r1r::vision {
namespace {

uint32_t Crc32(const std::string& data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char c : data) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

void PutBigEndian(std::string* s, size_t offset, uint32_t v) {
  for (int i = 0; i < 4; ++i) (*s)[offset + i] = static_cast<char>((v >> (24 - 8 * i)) & 0xFF);
}

TEST(vision, DecodeMatchesPillow) {
  const auto expected = testing::Expected();
  ASSERT_EQ(expected["decode"].size(), 6u);
  for (const auto& [name, size] : expected["decode"].items()) {
    absl::StatusOr<RgbImage> im = LoadImageFile(testing::TestData(name));
    ASSERT_TRUE(im.ok()) << name << ": " << im.status();
    EXPECT_EQ(im->width, size[0].get<int>()) << name;
    EXPECT_EQ(im->height, size[1].get<int>()) << name;
    const std::vector<uint8_t> want = testing::ReadBytes(testing::TestData(name + ".rgb"));
    ASSERT_EQ(im->pixels.size(), want.size()) << name;
    size_t diffs = 0;
    for (size_t i = 0; i < want.size(); ++i) diffs += im->pixels[i] != want[i];
    EXPECT_EQ(diffs, 0u) << name << " differs from PIL's convert(\"RGB\") in " << diffs << " values";
  }
}

TEST(vision, DecodeRejectsCorruptFiles) {
  const std::string png = testing::ReadFile(testing::TestData("gradient_83x61.png"));
  const std::string jpg = testing::ReadFile(testing::TestData("photo_50x47.jpg"));
  for (const std::string& bad : {png.substr(0, 100), png.substr(0, png.size() / 2), jpg.substr(0, jpg.size() / 2),
                                 jpg.substr(0, 20), std::string("\x89PNG\r\n\x1a\ngarbage-garbage-garbage", 31),
                                 std::string("GIF89a......"), std::string()}) {
    absl::StatusOr<RgbImage> im = DecodeImage(bad);
    EXPECT_EQ(im.status().code(), absl::StatusCode::kInvalidArgument) << bad.size() << " bytes: " << im.status();
  }
  // A flipped byte in compressed PNG data fails its CRC.
  std::string flipped = png;
  flipped[flipped.size() / 2] ^= 0x5A;
  EXPECT_FALSE(DecodeImage(flipped).ok());
  EXPECT_EQ(LoadImageFile("/nonexistent.png").status().code(), absl::StatusCode::kNotFound);
}

TEST(vision, DecodeRejectsDecompressionBombsFromHeader) {
  // PNG whose IHDR claims 60000 x 60000 (CRC fixed up): refused before any pixel allocation.
  std::string png = testing::ReadFile(testing::TestData("gradient_83x61.png"));
  PutBigEndian(&png, 16, 60000);
  PutBigEndian(&png, 20, 60000);
  PutBigEndian(&png, 29, Crc32(png.substr(12, 17)));  // CRC over "IHDR" + 13 data bytes
  absl::StatusOr<RgbImage> im = DecodeImage(png);
  EXPECT_EQ(im.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(im.status().message().find("decompression bomb"), std::string::npos) << im.status();
  // JPEG whose SOF0 claims 60000 x 60000.
  std::string jpg = testing::ReadFile(testing::TestData("photo_50x47.jpg"));
  const size_t sof = jpg.find("\xFF\xC0");
  ASSERT_NE(sof, std::string::npos);
  jpg[sof + 5] = static_cast<char>(0xEA), jpg[sof + 6] = 0x60;  // height 60000
  jpg[sof + 7] = static_cast<char>(0xEA), jpg[sof + 8] = 0x60;  // width 60000
  im = DecodeImage(jpg);
  EXPECT_EQ(im.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(im.status().message().find("decompression bomb"), std::string::npos) << im.status();
  // A tight limit applies to ordinary files too.
  DecodeLimits tight;
  tight.max_pixels = 1000;
  EXPECT_FALSE(LoadImageFile(testing::TestData("gradient_83x61.png"), tight).ok());
  EXPECT_TRUE(LoadImageFile(testing::TestData("gray_33x29.jpg"), tight).ok());  // 957 pixels
}

}  // namespace
}  // namespace r1r::vision
