// Parity with Hugging Face transformers on a tiny random Qwen2.5-VL.
//
// The fixture tests/fixtures/model/hf_tiny/ is produced by tests/fixtures/model/make_hf_tiny.py on a
// machine with PyTorch + transformers: config.json + model.safetensors (as save_pretrained wrote
// them, so whatever key layout that transformers version uses) and cases.safetensors holding, per
// case ("text", "image"), "<case>.input_ids" [1, L], "<case>.logits" [1, L, V] (float32, eager
// attention) and for images "<case>.pixel_values" / "<case>.image_grid_thw", plus "image.greedy_ids", HF's
// greedy continuation of the image prompt. The committed fixture came from transformers 5.17 with the
// M-RoPE positions passed explicitly (see the script); without the fixture the test skips.
#include <filesystem>

#include "common/model/generate.h"
#include "common/model/logprobs.h"
#include "common/model/safetensors.h"
#include "common/model/weights.h"
#include "tests/unit/model/test_util.h"

namespace r1r::model {
namespace {

TEST(model, HfParityTinyLogits) {
  const std::string dir = std::string(R1R_SOURCE_DIR) + "/tests/fixtures/model/hf_tiny";
  if (!std::filesystem::exists(dir + "/config.json") || !std::filesystem::exists(dir + "/cases.safetensors")) {
    GTEST_SKIP() << "HF parity fixture " << dir << " is absent; generate it with tests/fixtures/model/make_hf_tiny.py "
                 << "on a machine with transformers";
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

  // Greedy KV-cache generation after the image prompt equals HF's full-recompute argmax chain.
  ASSERT_EQ(cases->count("image.greedy_ids"), 1u) << "regenerate the fixture: it predates image.greedy_ids";
  const at::Tensor want = cases->at("image.greedy_ids").to(torch::kLong).flatten();
  const at::Tensor prompt = cases->at("image.input_ids").to(torch::kLong).flatten();
  GenerationRequest req;
  req.prompt_ids.assign(prompt.data_ptr<int64_t>(), prompt.data_ptr<int64_t>() + prompt.numel());
  req.pixel_values = cases->at("image.pixel_values").to(torch::kFloat);
  req.image_grid_thw = cases->at("image.image_grid_thw").to(torch::kLong);
  req.sampling.temperature = 0;
  req.sampling.max_new_tokens = want.numel();
  req.sampling.suppress_token_ids = {(*model)->config().image_token_id};
  auto generated = Generate(**model, {req});
  ASSERT_TRUE(generated.ok()) << generated.status();
  const std::vector<int64_t> want_ids(want.data_ptr<int64_t>(), want.data_ptr<int64_t>() + want.numel());
  EXPECT_EQ((*generated)[0].token_ids, want_ids);
}

// Device parity: the same seed on CUDA (float32 and bfloat16) as on the CPU. Skipped without a GPU.
TEST(model, CudaMatchesCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device in this LibTorch build/machine";
  const ModelConfig c = MakeTinyConfig();
  auto cpu = Qwen2_5_VL::Create(c, {at::kFloat, at::kCPU}, 5);
  auto gpu = Qwen2_5_VL::Create(c, {at::kFloat, at::Device(at::kCUDA, 0)}, 5);
  auto gpu16 = Qwen2_5_VL::Create(c, {at::kBFloat16, at::Device(at::kCUDA, 0)}, 5);
  ASSERT_TRUE(cpu.ok() && gpu.ok() && gpu16.ok());
  ForwardInput in;
  in.input_ids = testing::Ids(testing::PromptWithImage(c, 8, 12, 3, 4));
  in.pixel_values = testing::RandomPixels(c, 8, 12, 1);
  in.image_grid_thw = testing::Grid(8, 12);
  torch::NoGradGuard no_grad;
  auto a = (*cpu)->Forward(in);
  auto b = (*gpu)->Forward(in);
  auto h = (*gpu16)->Forward(in);
  ASSERT_TRUE(a.ok() && b.ok() && h.ok());
  at::Tensor la = (*cpu)->ComputeLogits(a->hidden), lb = (*gpu)->ComputeLogits(b->hidden).cpu();
  EXPECT_LT(testing::MaxAbsDiff(la, lb), 1e-4);
  at::Tensor lh = (*gpu16)->ComputeLogits(h->hidden).cpu();
  EXPECT_LT(testing::MaxAbsDiff(la, lh), 0.05 * la.abs().max().item<double>() + 0.05);

  GenerationRequest r;
  r.prompt_ids = testing::PromptWithImage(c, 8, 12, 3, 4);
  r.pixel_values = in.pixel_values;
  r.image_grid_thw = in.image_grid_thw;
  r.sampling = {.temperature = 0.0, .max_new_tokens = 8};
  auto ga = Generate(**cpu, {r});
  auto gb = Generate(**gpu, {r});
  ASSERT_TRUE(ga.ok() && gb.ok());
  EXPECT_EQ((*ga)[0].token_ids, (*gb)[0].token_ids);
}

}  // namespace
}  // namespace r1r::model
