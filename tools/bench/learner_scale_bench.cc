// learner_scale_bench: one SFT step and one RL step of the learner at scale on one device, as the
// learner takes them (bf16 forward/backward, fp32 master + AdamW moments in ShardedAdamW, activation
// checkpointing of decoder layers and vision blocks), with the peak device memory next to the memory
// plan (common/config/memory_plan.h) and tokens per second. Run by tools/gpu/learner_scale.sh on a
// Qwen2.5-VL-3B-shaped random model; also runs on the CPU with a small model for a smoke test.
//
//   learner_scale_bench --model_dir=DIR [--device=cuda] [--tokens=2048] [--image=448] [--response=1024]
//                       [--precision=bf16_mixed|fp32] [--checkpointing=1] [--steps=2] [--batch_out=FILE]
//
// --batch_out writes the batch (input_ids, position_ids, pixel_values, image_grid_thw, first_target)
// as safetensors, so the PyTorch reference (tools/gpu/hf_learner_step.py) trains on the same tokens.
// The last line is one JSON object: sft/rl step seconds and tokens/s, peak bytes, planned bytes.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>

#include <torch/torch.h>
#include <nlohmann/json.hpp>
#ifdef R1R_WITH_CUDA  // (set by CMake when this LibTorch has CUDA; the CPU package ships the headers alone)
#include <c10/cuda/CUDACachingAllocator.h>
#define R1R_HAVE_CUDA_STATS 1
#endif

#include "common/config/memory_plan.h"
#include "common/model/logprobs.h"
#include "common/model/model.h"
#include "common/model/safetensors.h"
#include "common/model/weights.h"
#include "common/rl/config.h"
#include "common/rl/loss.h"
#include "common/train/optimizer.h"
#include "tools/bench/bench_flags.h"

using namespace r1r;
using Clock = std::chrono::steady_clock;

namespace {

std::map<std::string, std::string> kFlags = {
    {"model_dir", ""},   {"device", "cuda"},  {"tokens", "2048"},   {"image", "448"},   {"response", "1024"},
    {"precision", "bf16_mixed"}, {"checkpointing", "1"}, {"steps", "2"}, {"batch_out", ""}, {"lr", "1e-5"}};
int64_t I(const char* k) { return std::stoll(kFlags.at(k)); }

using bench::Must;

bool Cuda() { return kFlags.at("device").rfind("cuda", 0) == 0; }
void Sync() {
  if (Cuda()) torch::cuda::synchronize();
}
int64_t PeakBytes() {
#ifdef R1R_HAVE_CUDA_STATS
  if (Cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(0);
    return stats.allocated_bytes[0].peak;  // [0]: StatType::AGGREGATE (its namespace moved between versions)
  }
#endif
  return -1;
}
void ResetPeak() {
#ifdef R1R_HAVE_CUDA_STATS
  if (Cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(0);
#endif
}

config::ModelShape PlanShape(const model::ModelConfig& c) {
  config::ModelShape m;
  m.vocab = static_cast<double>(c.text.vocab_size), m.hidden = static_cast<double>(c.text.hidden_size);
  m.layers = static_cast<double>(c.text.num_hidden_layers), m.heads = static_cast<double>(c.text.num_attention_heads);
  m.kv_heads = static_cast<double>(c.text.num_key_value_heads);
  m.intermediate = static_cast<double>(c.text.intermediate_size), m.tied = c.text.tie_word_embeddings;
  m.v_hidden = static_cast<double>(c.vision.hidden_size), m.v_depth = static_cast<double>(c.vision.depth);
  m.v_intermediate = static_cast<double>(c.vision.intermediate_size);
  m.v_heads = static_cast<double>(c.vision.num_heads), m.v_out = static_cast<double>(c.vision.out_hidden_size);
  m.v_window = static_cast<double>(c.vision.window_size);
  m.v_full_blocks = static_cast<double>(c.vision.fullatt_block_indexes.size());
  m.known = true;
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  if (!bench::ParseFlags(argc, argv, kFlags)) return 2;
  const bool mixed = kFlags.at("precision") == "bf16_mixed";
  const bool checkpointing = I("checkpointing") != 0;
  model::ModelOptions mo;
  mo.dtype = mixed ? torch::kBFloat16 : torch::kFloat;
  mo.device = at::Device(kFlags.at("device"));
  auto t_load = Clock::now();
  auto model = Must(model::LoadPretrained(kFlags.at("model_dir"), mo), "load");
  Sync();
  const double load_seconds = std::chrono::duration<double>(Clock::now() - t_load).count();
  const model::ModelConfig& config = model->config();
  int64_t parameters = 0;
  for (const auto& p : model->parameters()) parameters += p.numel();
  std::printf("loaded %lld parameters in %.1f s\n", static_cast<long long>(parameters), load_seconds);
  auto optimizer = Must(train::ShardedAdamW::Create(model->parameters(), train::ShardedAdamWOptions{}, nullptr), "optimizer");

  // One sequence: <vision_start> image <vision_end>, prompt text, response; `tokens` in all.
  const int64_t side = I("image") / 28 * 2;  // patches per side
  const int64_t image_tokens = side * side / 4, response = I("response");
  const int64_t text = std::max<int64_t>(1, I("tokens") - image_tokens - 2 - response);
  torch::manual_seed(7);
  std::vector<int64_t> ids = {config.vision_start_token_id};
  for (int64_t i = 0; i < image_tokens; ++i) ids.push_back(config.image_token_id);
  ids.push_back(config.vision_end_token_id);
  at::Tensor words = torch::randint(0, std::min<int64_t>(150000, config.text.vocab_size - 300), {text + response}, torch::kLong);
  for (int64_t i = 0; i < text + response; ++i) ids.push_back(words[i].item<int64_t>());
  const int64_t L = static_cast<int64_t>(ids.size());
  model::ForwardInput input;
  input.input_ids = torch::tensor(ids, torch::kLong).view({1, L});
  input.pixel_values = torch::randn({side * side, config.vision.patch_dim()});
  input.image_grid_thw = torch::tensor({int64_t{1}, side, side}).view({1, 3});
  auto positions = Must(model->ComputePositionIds(input.input_ids, at::Tensor(), input.image_grid_thw), "positions");
  input.position_ids = positions.first;
  input.checkpoint_layers = checkpointing;
  model::TokenLogProbsOptions lo;
  lo.first_target_position = L - response;
  if (!kFlags.at("batch_out").empty()) {
    Must(model::WriteSafetensors(kFlags.at("batch_out"),
                                 {{"input_ids", input.input_ids},
                                  {"position_ids", input.position_ids},
                                  {"pixel_values", input.pixel_values},
                                  {"image_grid_thw", input.image_grid_thw},
                                  {"first_target", torch::tensor({lo.first_target_position}, torch::kLong)}}),
         "batch_out");
  }
  const double lr = std::stod(kFlags.at("lr"));
  auto apply = [&] {
    Must(optimizer->AccumulateGradients(), "accumulate");
    const double norm = Must(optimizer->ReduceGradients(), "reduce");
    Must(optimizer->Step(lr, std::min(1.0, 1.0 / (norm + 1e-6))), "step");
    optimizer->ZeroGrad();
  };
  const int steps = static_cast<int>(std::max<int64_t>(1, I("steps")));
  nlohmann::json out = {{"parameters", parameters}, {"tokens", L}, {"image_tokens", image_tokens},
                        {"response_tokens", response}, {"precision", kFlags.at("precision")},
                        {"checkpointing", checkpointing}, {"load_seconds", load_seconds}};

  // SFT: token-mean cross-entropy of the response. Step 0 warms up (kernels, cuBLAS handles).
  model->train();
  ResetPeak();
  double sft_seconds = 0, sft_loss = 0;
  for (int step = 0; step <= steps; ++step) {
    Sync();
    const auto t0 = Clock::now();
    auto lp = Must(model::ComputeTokenLogProbs(*model, input, lo), "sft forward");
    at::Tensor loss = -lp.logprobs.mean();
    loss.backward();
    apply();
    sft_loss = loss.item<double>();
    Sync();
    if (step > 0) sft_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
  }
  out["sft_step_seconds"] = sft_seconds / steps;
  out["sft_tokens_per_second"] = static_cast<double>(L) / (sft_seconds / steps);
  out["sft_loss"] = sft_loss;
  out["sft_peak_bytes"] = PeakBytes();

  // RL: logp_old without grad, then the StableReinforce loss (pre-clip, clipped ratio) with grad.
  ResetPeak();
  const rl::RlAlgorithmConfig algorithm = rl::ConfigFor(rl::Algorithm::kStableReinforce);
  double rl_seconds = 0, rl_loss = 0;
  for (int step = 0; step <= steps; ++step) {
    Sync();
    const auto t0 = Clock::now();
    at::Tensor old;
    {
      torch::NoGradGuard no_grad;
      model->eval();
      old = Must(model::ComputeTokenLogProbs(*model, input, lo), "rl old forward").logprobs;
      model->train();
    }
    auto lp = Must(model::ComputeTokenLogProbs(*model, input, lo), "rl forward");
    at::Tensor advantages = torch::linspace(-1.0, 1.0, response, lp.logprobs.options()).view({1, response});
    at::Tensor mask = torch::ones({1, response}, lp.logprobs.options());
    rl::PolicyLossResult pl = rl::PolicyLoss(lp.logprobs, old, advantages, mask, algorithm.loss, false);
    pl.loss.backward();
    apply();
    rl_loss = pl.loss.item<double>();
    Sync();
    if (step > 0) rl_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
  }
  out["rl_step_seconds"] = rl_seconds / steps;
  out["rl_tokens_per_second"] = static_cast<double>(L) / (rl_seconds / steps);
  out["rl_loss"] = rl_loss;
  out["rl_peak_bytes"] = PeakBytes();

  config::LearnerPlanOptions po;
  po.mixed = mixed;
  po.checkpointing = checkpointing;
  po.cuda = Cuda();
  po.fused_attention = TORCH_VERSION_MAJOR >= 2;
  po.sequences = 1;
  po.text_tokens = static_cast<double>(text + response + 2);
  po.image_tokens = static_cast<double>(image_tokens);
  po.response_tokens = static_cast<double>(response);
  const config::LearnerMemory plan = config::PlanLearnerMemory(PlanShape(config), po, 0);
  nlohmann::json terms = nlohmann::json::object();
  for (const auto& [name, bytes] : plan.terms) terms[name] = static_cast<int64_t>(bytes);
  out["plan_terms"] = terms;
  out["plan_bytes"] = static_cast<int64_t>(plan.per_gpu_bytes);
  // The allocator does not see the CUDA context: compare without it.
  out["plan_allocator_bytes"] = static_cast<int64_t>(plan.per_gpu_bytes - (po.cuda ? 1024.0 * 1024 * 1024 : 0));
  const double peak = std::max(out["sft_peak_bytes"].get<double>(), out["rl_peak_bytes"].get<double>());
  if (peak > 0) out["plan_error"] = (out["plan_allocator_bytes"].get<double>() - peak) / peak;
  std::printf("SFT %.3f s/step (%.0f tokens/s), RL %.3f s/step (%.0f tokens/s); peak %.2f GiB, plan %.2f GiB\n",
              out["sft_step_seconds"].get<double>(), out["sft_tokens_per_second"].get<double>(),
              out["rl_step_seconds"].get<double>(), out["rl_tokens_per_second"].get<double>(), peak / (1 << 30),
              out["plan_allocator_bytes"].get<double>() / (1 << 30));
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
