// The torch-free safetensors header checks (the fuzzer's target) on hand-made files.
#include "common/model/safetensors_header.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace r1r::model {
namespace {

using ::testing::HasSubstr;

// 8-byte little-endian length + header + `data_bytes` zero bytes.
std::string File(const std::string& header, size_t data_bytes) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return out + header + std::string(data_bytes, '\0');
}

absl::StatusOr<SafetensorsLayout> Parse(const std::string& file) {
  return ParseSafetensorsHeader("w.safetensors", reinterpret_cast<const uint8_t*>(file.data()), file.size());
}

TEST(model, SafetensorsHeaderListsEntriesAndDataOffset) {
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]},)"
      R"("b":{"dtype":"F32","shape":[],"data_offsets":[12,16]}})";
  auto layout = Parse(File(header, 16));
  ASSERT_TRUE(layout.ok()) << layout.status();
  ASSERT_EQ(layout->entries.size(), 2u);
  EXPECT_EQ(layout->data_offset, 8 + header.size());
  EXPECT_EQ(layout->entries[0].name, "a");
  EXPECT_EQ(layout->entries[0].dtype_bytes, 2);
  EXPECT_EQ(layout->entries[0].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(layout->entries[1].begin, 12u);
}

TEST(model, SafetensorsHeaderFindsOverlapAcrossAnEmptyTensor) {
  // "big" covers [0, 40); the empty "gap" sorts between it and "late", which starts inside "big".
  const std::string header =
      R"({"big":{"dtype":"F32","shape":[10],"data_offsets":[0,40]},)"
      R"("gap":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},)"
      R"("late":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})";
  auto layout = Parse(File(header, 40));
  ASSERT_FALSE(layout.ok());
  EXPECT_EQ(layout.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(layout.status().message()), HasSubstr("tensor 'late': data overlaps tensor 'big'"));
}

TEST(model, SafetensorsHeaderRejectsSizeThatOverflowsTheElementWidth) {
  // 2^61 elements of 8 bytes would wrap 64 bits to 0 bytes: the check must not be fooled by the wrap.
  const std::string header = R"({"x":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}})";
  auto layout = Parse(File(header, 0));
  ASSERT_FALSE(layout.ok());
  EXPECT_THAT(std::string(layout.status().message()), HasSubstr("tensor 'x': holds 0 bytes"));
}

TEST(model, SafetensorsHeaderNamesTheFileOnBadLength) {
  std::string file = File(R"({})", 0);
  file[7] = '\x7f';  // a length of ~2^62
  auto layout = Parse(file);
  ASSERT_FALSE(layout.ok());
  EXPECT_THAT(std::string(layout.status().message()), HasSubstr("w.safetensors: header length"));
  EXPECT_FALSE(Parse("short").ok());
}

}  // namespace
}  // namespace r1r::model
