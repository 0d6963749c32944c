#include "common/vision/image_tensors.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "tests/unit/vision/vision_test_util.h"

namespace r1r::vision {
namespace {

TEST(vision, TensorsForTwoImages) {
  const std::vector<std::string> paths = {testing::TestData("gradient_83x61.png"),
                                          testing::TestData("photo_50x47.jpg")};
  absl::StatusOr<ImageBatchTensors> t = LoadAndProcessImages(paths);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->pixel_values.dtype(), at::kFloat);
  EXPECT_EQ(t->pixel_values.sizes(), (std::vector<int64_t>{24 + 16, 1176}));
  EXPECT_EQ(t->image_grid_thw.dtype(), at::kLong);
  EXPECT_EQ(t->image_grid_thw.sizes(), (std::vector<int64_t>{2, 3}));
  const std::vector<int64_t> grid(t->image_grid_thw.data_ptr<int64_t>(), t->image_grid_thw.data_ptr<int64_t>() + 6);
  EXPECT_EQ(grid, (std::vector<int64_t>{1, 4, 6, 1, 4, 4}));
  EXPECT_EQ(t->image_tokens, (std::vector<int64_t>{6, 4}));
  // Rows of the second image follow the first's, unchanged.
  const std::vector<float> want = testing::ReadFloats(testing::TestData("photo_50x47.jpg.pixel_values.f32"));
  const at::Tensor second = t->pixel_values.slice(0, 24).contiguous();
  EXPECT_EQ(0, std::memcmp(second.data_ptr<float>(), want.data(), want.size() * sizeof(float)));
  EXPECT_FALSE(LoadAndProcessImages(std::vector<std::string>{"/nonexistent.jpg"}).ok());
  EXPECT_FALSE(ProcessImages({}).ok());
}

}  // namespace
}  // namespace r1r::vision
