// Parity with Hugging Face transformers on a tiny random Qwen2.5-VL.
//
// The fixture tests/fixtures/model/hf_tiny/ is produced by tests/fixtures/model/make_hf_tiny.py on a
// machine with PyTorch + transformers: config.json + model.safetensors (as save_pretrained wrote
// them, so whatever key layout that transformers version uses) and cases.safetensors holding, per
// case ("text", "image"), "<case>.input_ids" [1, L], "<case>.logits" [1, L, V] (float32, eager
// attention) and for images "<case>.pixel_values" / "<case>.image_grid_thw". Until it is generated
// the test is skipped: HF-logit parity is still open.
#include <filesystem>

#include "common/model/safetensors.h"
#include "common/model/weights.h"
#include "tests/unit/model/test_util.h"

namespace r1r::model {
namespace {

TEST(model, HfParityTinyLogits) {
  const std::string dir = std::string(R1R_SOURCE_DIR) + "/tests/fixtures/model/hf_tiny";
  if (!std::filesystem::exists(dir + "/config.json") || !std::filesystem::exists(dir + "/cases.safetensors")) {
    GTEST_SKIP() << "HF parity fixture " << dir << " is absent; generate it with tests/fixtures/model/make_hf_tiny.py "
                 << "on a machine with transformers (HF-logit parity is still open)";
  }
  auto model = LoadPretrained(dir, ModelOptions{at::kFloat, at::kCPU});
  ASSERT_TRUE(model.ok()) << model.status();
  auto cases = ReadSafetensors(dir + "/cases.safetensors");
  ASSERT_TRUE(cases.ok()) << cases.status();
  torch::NoGradGuard no_grad;
  int checked = 0;
  for (const char* name : {"text", "image"}) {
    const std::string prefix = std::string(name) + ".";
    if (cases->count(prefix + "input_ids") == 0) continue;
    ForwardInput in;
    in.input_ids = cases->at(prefix + "input_ids").to(torch::kLong);
    if (cases->count(prefix + "pixel_values") != 0) {
      in.pixel_values = cases->at(prefix + "pixel_values").to(torch::kFloat);
      in.image_grid_thw = cases->at(prefix + "image_grid_thw").to(torch::kLong);
    }
    auto out = (*model)->Forward(in);
    ASSERT_TRUE(out.ok()) << name << ": " << out.status();
    at::Tensor logits = (*model)->ComputeLogits(out->hidden);
    const at::Tensor& expected = cases->at(prefix + "logits");
    ASSERT_EQ(logits.sizes(), expected.sizes()) << name;
    EXPECT_LT(testing::MaxAbsDiff(logits, expected), 1e-4) << name;
    ++checked;
  }
  EXPECT_EQ(checked, 2);
}

}  // namespace
}  // namespace r1r::model
