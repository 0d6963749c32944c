// learner_memory_bench: the learner's memory per rank, measured next to the plan (common/config/
// memory_plan.h), and its step time, on the CPU with a Qwen2.5-VL-shaped model of ~75M parameters
// (Qwen2.5-VL's vocabulary, head size 64, grouped-query attention, SwiGLU, a windowed vision tower with a
// full-attention block and the 2x2 merger; small widths). Rows: 1 and 2 Gloo ranks x ZeRO 0/1/2, fp32
// (the CPU has no fast bf16), one sequence per micro-batch with a 224x224 image.
//
// Each row runs in fresh processes (one per rank) so that a counting CPU allocator (common/train/
// memory_meter.h) sees exactly one rank: parameters, gradients (the fp32 accumulator, plus the .grad a
// backward allocates in stage 2), optimizer (moments; master in bf16_mixed), activations (bytes the
// forward keeps for backward) and workspace (the rest of the step's peak), and the step's peak.
//
//   learner_memory_bench [--json] [--steps=1] [--repeats=3] [--text=192] [--response=64] [--image=224]
//                        [--checkpointing=0]
//
// --sft_packing=1 runs instead SFT on a ragged set of 8 samples (prompts of 40-500 text tokens, half with
// a 224x224 image, responses of 20-200 tokens) as 2 micro-batches of 4, padded (prompts left-padded,
// responses right-padded: train::BuildSequenceBatch) and packed (one row of 4 samples back to back:
// train::BuildPackedSequenceBatch), each in a fresh process, side by side: tokens/s of the step
// (forward, backward, AdamW) over real tokens, and peak bytes; plus the attention alone of one packed
// row, a dense block-diagonal mask (what LibTorch 1.13 would need) against one causal attention per
// sample (what the model does). --json: the last line holds packed_over_padded_tokens_per_second,
// packed_over_padded_peak_bytes and block_mask_over_segments_seconds.
//
// Step time of ZeRO-2 against ZeRO-0 at 2 ranks is measured apart from the memory rows, side by side:
// --repeats rounds of three fresh 2-rank runs in turn (ZeRO-0; ZeRO-2 with the gradient reduction
// overlapped with backward; ZeRO-2 reducing after backward), each one warm-up step then --steps timed
// ones, so that the machine's load (shared, 2 cores) falls on all three alike. The medians and the
// spread are printed, with each run's split into forward / backward / accumulate / reduce / step.
//
// --json: the last line is one JSON object with plan_error_max (largest |planned - measured| / measured
// of the per-rank peak over the rows), zero2_state_ratio (ZeRO-2 at 2 ranks: persistent gradient +
// optimizer bytes per rank over ZeRO-0 at 1 rank), zero2_step_time_ratio (median ZeRO-2 step over median
// ZeRO-0 step, both at 2 ranks, overlapped), zero2_sync_step_time_ratio (the same without overlap), the
// timing runs and the rows.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "common/config/memory_plan.h"
#include "common/dist/process_group.h"
#include "common/model/config.h"
#include "common/model/logprobs.h"
#include "common/model/model.h"
#include "common/train/memory_meter.h"
#include "common/train/optimizer.h"
#include "common/train/sequence_batch.h"
#include "tools/bench/bench_flags.h"

using namespace r1r;
using Clock = std::chrono::steady_clock;

namespace {

std::map<std::string, std::string> kFlags = {{"json", "0"},  {"steps", "1"},      {"text", "192"},  {"response", "64"},
                                             {"image", "224"}, {"checkpointing", "0"}, {"child", "0"}, {"rank", "0"},
                                             {"world", "1"},   {"zero", "0"},     {"port", "0"},     {"threads", "1"},
                                             {"sft_packing", "0"}, {"packed", "0"}, {"overlap", "1"},
                                             {"warmup", "0"}, {"repeats", "3"}};
int64_t I(const char* k) { return std::stoll(kFlags.at(k)); }

model::TinyConfigOptions Shape() {
  model::TinyConfigOptions o;
  o.vocab_size = 151936;  // Qwen2.5-VL's, with its special token ids
  o.hidden_size = 384;
  o.num_layers = 8;
  o.num_heads = 6;  // head size 64, as in every Qwen2.5-VL
  o.num_kv_heads = 2;
  o.intermediate_size = 1024;
  o.vision_hidden_size = 256;
  o.vision_depth = 4;
  o.vision_heads = 4;  // head size 64
  o.vision_intermediate_size = 640;
  o.tie_word_embeddings = true;
  return o;
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

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

using bench::Must;

// One rank of one row: prints "ROW <json>".
int Child() {
  torch::set_num_threads(static_cast<int>(I("threads")));
  train::InstallCpuMemoryMeter();
  const int rank = static_cast<int>(I("rank")), world = static_cast<int>(I("world")), zero = static_cast<int>(I("zero"));
  const bool checkpointing = I("checkpointing") != 0;
  const int64_t base = train::CpuBytesInUse();
  const model::ModelConfig config = model::MakeTinyConfig(Shape());
  auto model = Must(model::Qwen2_5_VL::Create(config, model::ModelOptions{}, /*seed=*/1), "model");
  std::unique_ptr<dist::ProcessGroup> group;
  if (world > 1) {
    dist::GroupOptions g;
    g.rank = rank;
    g.world_size = world;
    g.master_port = static_cast<int>(I("port"));
    g.timeout = std::chrono::seconds(300);
    group = Must(dist::ProcessGroup::Create(g), "process group");
  }
  train::ShardedAdamWOptions oo;
  oo.zero_stage = zero;
  oo.overlap_grad_reduce = I("overlap") != 0;
  auto optimizer = Must(train::ShardedAdamW::Create(model->parameters(), oo, group.get()), "optimizer");

  // One sequence: <vision_start> image <vision_end>, text, response (its own tokens on each rank).
  const int64_t side = I("image") / 28 * 2;  // patches per side (merge 2)
  const int64_t image_tokens = side * side / 4, text = I("text"), response = I("response");
  torch::manual_seed(100 + rank);
  std::vector<int64_t> ids = {config.vision_start_token_id};
  for (int64_t i = 0; i < image_tokens; ++i) ids.push_back(config.image_token_id);
  ids.push_back(config.vision_end_token_id);
  at::Tensor words = torch::randint(0, 150000, {text + response}, torch::kLong);
  for (int64_t i = 0; i < text + response; ++i) ids.push_back(words[i].item<int64_t>());
  model::ForwardInput input;
  input.input_ids = torch::tensor(ids, torch::kLong).view({1, -1});
  input.pixel_values = torch::randn({side * side, config.vision.patch_dim()});
  input.image_grid_thw = torch::tensor({int64_t{1}, side, side}).view({1, 3});
  input.checkpoint_layers = checkpointing;
  model::TokenLogProbsOptions lo;
  lo.first_target_position = static_cast<int64_t>(ids.size()) - response;
  const int64_t model_ready = train::CpuBytesInUse();

  const int steps = static_cast<int>(I("steps")), warmup = static_cast<int>(I("warmup"));
  double seconds = 0;
  // Seconds of each part of the step: forward, backward (overlapped buckets start inside it), accumulate
  // (waiting for them, or stage 2's reduce-scatter after backward), reduce (stages 0/1 and the norm), step
  // (AdamW and the all-gather).
  std::map<std::string, double> phases;
  int64_t kept = 0, transient = 0, peak = 0, before = 0;
  // Memory rows take no warm-up (ShardedAdamW allocates its state up front); timing runs take one.
  for (int step = 1 - warmup; step <= steps; ++step) {
    optimizer->ZeroGrad();
    before = train::CpuBytesInUse();
    train::ResetCpuPeakBytes();
    std::vector<Clock::time_point> t = {Clock::now()};
    auto lp = Must(model::ComputeTokenLogProbs(*model, input, lo), "forward");
    at::Tensor loss = -lp.logprobs.mean();
    kept = train::CpuBytesInUse() - before;
    t.push_back(Clock::now());
    loss.backward();
    t.push_back(Clock::now());
    transient = 0;
    if (zero == 2) {
      for (const auto& p : model->parameters()) transient += p.grad().defined() ? static_cast<int64_t>(p.grad().nbytes()) : 0;
    }
    Must(optimizer->AccumulateGradients(), "accumulate");
    t.push_back(Clock::now());
    const double norm = Must(optimizer->ReduceGradients(), "reduce");
    t.push_back(Clock::now());
    Must(optimizer->Step(1e-5, std::min(1.0, 1.0 / (norm + 1e-6))), "step");
    t.push_back(Clock::now());
    if (step >= 1) {
      seconds += std::chrono::duration<double>(t.back() - t.front()).count();
      const char* names[] = {"forward", "backward", "accumulate", "reduce", "step"};
      for (size_t i = 0; i + 1 < t.size(); ++i) phases[names[i]] += std::chrono::duration<double>(t[i + 1] - t[i]).count() / steps;
    }
    peak = train::CpuPeakBytes();
  }
  const train::OptimizerMemory held = optimizer->Memory();
  // Split as the plan splits: gradients = the fp32 accumulator that persists through the step; the
  // .grad a stage-2 backward allocates (transient) counts in the workspace, like the lm-head chunk.
  nlohmann::json measured = {{"parameters", held.parameters},
                             {"gradients", held.gradients},
                             {"optimizer", held.optimizer},
                             {"activations", kept},
                             {"workspace", std::max<int64_t>(0, peak - before - kept)},
                             {"transient_grads", transient},
                             {"peak", peak - base},
                             {"persistent_state", held.gradients + held.optimizer}};
  config::LearnerPlanOptions po;
  po.world_size = world;
  po.zero_stage = zero;
  po.mixed = false;
  po.checkpointing = checkpointing;
  po.fused_attention = false;  // LibTorch 1.13 on the CPU: explicit attention
  po.cuda = false;
  po.sequences = 1;
  po.text_tokens = static_cast<double>(text + response + 2);
  po.image_tokens = static_cast<double>(image_tokens);
  po.response_tokens = static_cast<double>(response);
  const config::LearnerMemory plan = config::PlanLearnerMemory(PlanShape(config), po, 0);
  nlohmann::json planned = nlohmann::json::object();
  for (const auto& [name, bytes] : plan.terms) planned[name] = static_cast<int64_t>(bytes);
  planned["peak"] = static_cast<int64_t>(plan.per_gpu_bytes);
  int64_t parameters = 0;
  for (const auto& p : model->parameters()) parameters += p.numel();
  nlohmann::json row = {{"world", world},       {"zero", zero},     {"rank", rank}, {"overlap", I("overlap") != 0},
                        {"phases", phases},
                        {"parameters", parameters}, {"tokens", static_cast<int64_t>(ids.size())},
                        {"step_seconds", seconds / steps}, {"measured", measured}, {"planned", planned},
                        {"model_and_optimizer_bytes", model_ready - base}};
  std::printf("ROW %s\n", row.dump().c_str());
  return 0;
}

std::string Mib(double b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", b / (1024.0 * 1024));
  return buf;
}

// The ragged SFT set of --sft_packing: prompts (text, half with an image) and responses of very
// different lengths, in a fixed order.
struct RaggedSample {
  train::EncodedPrompt prompt;
  std::vector<int64_t> target;
};

std::vector<RaggedSample> RaggedSamples(const model::ModelConfig& config) {
  const std::vector<int64_t> text = {40, 300, 90, 500, 60, 200, 120, 420};
  const std::vector<int64_t> response = {30, 120, 60, 200, 20, 90, 40, 160};
  const int64_t side = 224 / 28 * 2;  // patches per side (merge 2)
  std::vector<RaggedSample> out;
  torch::manual_seed(7);
  for (size_t i = 0; i < text.size(); ++i) {
    RaggedSample s;
    if (i % 2 == 0) {
      s.prompt.ids.push_back(config.vision_start_token_id);
      for (int64_t t = 0; t < side * side / 4; ++t) s.prompt.ids.push_back(config.image_token_id);
      s.prompt.ids.push_back(config.vision_end_token_id);
      s.prompt.pixel_values = torch::randn({side * side, config.vision.patch_dim()});
      s.prompt.image_grid_thw = torch::tensor({int64_t{1}, side, side}).view({1, 3});
    }
    at::Tensor words = torch::randint(0, 150000, {text[i] + response[i]}, torch::kLong);
    for (int64_t t = 0; t < text[i]; ++t) s.prompt.ids.push_back(words[t].item<int64_t>());
    for (int64_t t = 0; t < response[i]; ++t) s.target.push_back(words[text[i] + t].item<int64_t>());
    out.push_back(std::move(s));
  }
  return out;
}

// One SFT step over the ragged set, padded or packed, in this process: prints "PACKING <json>".
int PackingChild() {
  torch::set_num_threads(static_cast<int>(I("threads")));
  train::InstallCpuMemoryMeter();
  const bool packed = I("packed") != 0;
  const int64_t base = train::CpuBytesInUse();
  const model::ModelConfig config = model::MakeTinyConfig(Shape());
  auto model = Must(model::Qwen2_5_VL::Create(config, model::ModelOptions{}, /*seed=*/1), "model");
  auto optimizer = Must(train::ShardedAdamW::Create(model->parameters(), train::ShardedAdamWOptions{}, nullptr), "optimizer");
  const std::vector<RaggedSample> samples = RaggedSamples(config);
  double real_tokens = 0, target_tokens = 0;
  for (const auto& s : samples) {
    real_tokens += static_cast<double>(s.prompt.ids.size() + s.target.size());
    target_tokens += static_cast<double>(s.target.size());
  }
  const int steps = static_cast<int>(I("steps"));
  double seconds = 0, forward_tokens = 0;
  int64_t peak = 0, step_peak = 0;
  for (int step = 0; step <= steps; ++step) {  // step 0 warms up (first-call allocations, thread pools)
    optimizer->ZeroGrad();
    const int64_t before = train::CpuBytesInUse();
    train::ResetCpuPeakBytes();
    forward_tokens = 0;
    const auto t0 = Clock::now();
    for (size_t first = 0; first < samples.size(); first += 4) {  // micro-batches of 4 samples
      std::vector<const train::EncodedPrompt*> prompts;
      std::vector<std::vector<int64_t>> targets;
      for (size_t i = first; i < first + 4; ++i) {
        prompts.push_back(&samples[i].prompt);
        targets.push_back(samples[i].target);
      }
      at::Tensor logp_sum;
      if (packed) {
        auto batch = Must(train::BuildPackedSequenceBatch(prompts, targets), "packed batch");
        logp_sum = Must(model::ComputeTokenLogProbsAt(*model, batch.input, batch.target_positions), "forward").sum();
        forward_tokens += static_cast<double>(batch.tokens);
      } else {
        auto batch = Must(train::BuildSequenceBatch(prompts, targets, /*pad_id=*/0), "padded batch");
        model::TokenLogProbsOptions lo;
        lo.first_target_position = batch.prompt_width;
        auto lp = Must(model::ComputeTokenLogProbs(*model, batch.input, lo), "forward");
        logp_sum = (lp.logprobs * batch.response_mask).sum();
        forward_tokens += static_cast<double>(batch.input.input_ids.numel());
      }
      (-logp_sum / target_tokens).backward();
      Must(optimizer->AccumulateGradients(), "accumulate");
    }
    const double norm = Must(optimizer->ReduceGradients(), "reduce");
    Must(optimizer->Step(1e-5, std::min(1.0, 1.0 / (norm + 1e-6))), "step");
    if (step > 0) seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    peak = std::max(peak, train::CpuPeakBytes() - base);
    step_peak = std::max(step_peak, train::CpuPeakBytes() - before);
  }
  nlohmann::json row = {{"packed", packed},
                        {"real_tokens", real_tokens},
                        {"forward_tokens", forward_tokens},
                        {"step_seconds", seconds / steps},
                        {"tokens_per_second", real_tokens * steps / seconds},
                        {"peak_bytes", peak},             // weights, optimizer state and the step
                        {"step_peak_bytes", step_peak}};  // above what was held before the step
  std::printf("PACKING %s\n", row.dump().c_str());
  return 0;
}

// Attention of one packed row (the first micro-batch, [1, heads, L, 64]) with LibTorch 1.13's explicit
// kernels: a dense block-diagonal causal mask against one causal attention per sample. Seconds each
// (forward and backward, median of 5).
std::pair<double, double> BlockMaskVersusSegments(const model::ModelConfig& config) {
  const std::vector<RaggedSample> samples = RaggedSamples(config);
  std::vector<int64_t> lengths;
  for (size_t i = 0; i < 4; ++i) lengths.push_back(static_cast<int64_t>(samples[i].prompt.ids.size() + samples[i].target.size()));
  int64_t L = 0;
  for (int64_t n : lengths) L += n;
  const int64_t heads = config.text.num_attention_heads, D = config.text.head_dim;
  auto attend = [&](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& allowed) {
    at::Tensor scores = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(D));
    scores = scores.masked_fill(allowed.logical_not(), std::numeric_limits<float>::lowest());
    return torch::matmul(torch::softmax(scores, -1), v);
  };
  auto causal = [](int64_t n) { return torch::ones({n, n}, torch::kBool).tril(); };
  at::Tensor q = torch::randn({1, heads, L, D}).requires_grad_(true);
  at::Tensor k = torch::randn({1, heads, L, D}).requires_grad_(true);
  at::Tensor v = torch::randn({1, heads, L, D}).requires_grad_(true);
  auto median = [](std::vector<double> t) {
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  };
  std::vector<double> dense, segmented;
  for (int rep = 0; rep < 5; ++rep) {
    auto t0 = Clock::now();
    at::Tensor block = torch::zeros({L, L}, torch::kBool);
    for (int64_t start = 0, i = 0; i < 4; start += lengths[i], ++i) {
      block.narrow(0, start, lengths[i]).narrow(1, start, lengths[i]).copy_(causal(lengths[i]));
    }
    attend(q, k, v, block.view({1, 1, L, L})).sum().backward();
    dense.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    t0 = Clock::now();
    std::vector<at::Tensor> parts;
    for (int64_t start = 0, i = 0; i < 4; start += lengths[i], ++i) {
      auto part = [&](const at::Tensor& t) { return t.narrow(2, start, lengths[i]); };
      parts.push_back(attend(part(q), part(k), part(v), causal(lengths[i]).view({1, 1, lengths[i], lengths[i]})));
    }
    torch::cat(parts, 2).sum().backward();
    segmented.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return {median(dense), median(segmented)};
}

int PackingMain(const char* self) {
  std::vector<nlohmann::json> rows;
  for (int packed : {0, 1}) {  // one after the other: each has the CPU to itself
    std::string cmd = std::string(self) + " --child=1 --sft_packing=1 --packed=" + std::to_string(packed);
    for (const char* k : {"steps", "threads"}) cmd += std::string(" --") + k + "=" + kFlags.at(k);
    FILE* f = ::popen(cmd.c_str(), "r");
    char line[1 << 16];
    while (f && std::fgets(line, sizeof line, f)) {
      std::string s(line);
      if (s.rfind("PACKING ", 0) == 0) rows.push_back(nlohmann::json::parse(s.substr(8)));
    }
    if (!f || ::pclose(f) != 0 || rows.size() != static_cast<size_t>(packed + 1)) {
      std::cerr << (packed ? "the packed" : "the padded") << " SFT run failed\n";
      return 1;
    }
  }
  torch::set_num_threads(static_cast<int>(I("threads")));
  const auto [dense, segmented] = BlockMaskVersusSegments(model::MakeTinyConfig(Shape()));
  const nlohmann::json& pad = rows[0];
  const nlohmann::json& pack = rows[1];
  std::printf("| SFT batches | tokens run (real %.0f) | step s | real tokens/s | peak MiB | step peak MiB |\n"
              "|---|---|---|---|---|---|\n",
              pad["real_tokens"].get<double>());
  for (const auto& r : rows) {
    std::printf("| %s | %.0f | %.2f | %.0f | %s | %s |\n", r["packed"].get<bool>() ? "packed" : "padded",
                r["forward_tokens"].get<double>(), r["step_seconds"].get<double>(), r["tokens_per_second"].get<double>(),
                Mib(r["peak_bytes"].get<double>()).c_str(), Mib(r["step_peak_bytes"].get<double>()).c_str());
  }
  const double speed = pack["tokens_per_second"].get<double>() / pad["tokens_per_second"].get<double>();
  const double memory = pack["peak_bytes"].get<double>() / pad["peak_bytes"].get<double>();
  const double step_memory = pack["step_peak_bytes"].get<double>() / pad["step_peak_bytes"].get<double>();
  std::printf("\npacked_over_padded_tokens_per_second %.3f  packed_over_padded_peak_bytes %.3f (step only %.3f)\n",
              speed, memory, step_memory);
  std::printf("attention of one packed row (fwd+bwd): block-diagonal mask %.4f s, per-sample causal %.4f s (ratio %.2f)\n",
              dense, segmented, dense / segmented);
  if (I("json")) {
    nlohmann::json out = {{"packed_over_padded_tokens_per_second", speed},
                          {"packed_over_padded_peak_bytes", memory},
                          {"packed_over_padded_step_peak_bytes", step_memory},
                          {"block_mask_seconds", dense},
                          {"segments_seconds", segmented},
                          {"block_mask_over_segments_seconds", dense / segmented},
                          {"rows", rows}};
    std::printf("%s\n", out.dump().c_str());
  }
  return 0;
}


// Starts the ranks of one run in fresh processes (one per rank); each prints one ROW line.
std::vector<FILE*> StartRun(const char* self, int world, int zero, bool overlap, int warmup) {
  std::vector<FILE*> children;
  const int port = FreePort();
  for (int rank = 0; rank < world; ++rank) {
    std::string cmd = std::string(self) + " --child=1 --rank=" + std::to_string(rank) + " --world=" +
                      std::to_string(world) + " --zero=" + std::to_string(zero) + " --port=" + std::to_string(port) +
                      " --overlap=" + std::to_string(overlap ? 1 : 0) + " --warmup=" + std::to_string(warmup);
    for (const char* k : {"steps", "text", "response", "image", "checkpointing", "threads"}) {
      cmd += std::string(" --") + k + "=" + kFlags.at(k);
    }
    children.push_back(::popen(cmd.c_str(), "r"));
  }
  return children;
}

// Appends the ROW of every child to `rows`; false (with a message) when one failed.
bool CollectRows(const std::vector<FILE*>& children, std::vector<nlohmann::json>& rows) {
  bool ok = true;
  for (FILE* f : children) {
    char line[1 << 16];
    bool got = false;
    while (f && std::fgets(line, sizeof line, f)) {
      std::string s(line);
      if (s.rfind("ROW ", 0) == 0) {
        rows.push_back(nlohmann::json::parse(s.substr(4)));
        got = true;
      }
    }
    const int rc = f ? ::pclose(f) : -1;
    if (!got || rc != 0) {
      std::cerr << "a rank failed (exit " << rc << ")\n";
      ok = false;
    }
  }
  return ok;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (!bench::ParseFlags(argc, argv, kFlags)) return 2;
  if (I("child")) return I("sft_packing") ? PackingChild() : Child();
  if (I("sft_packing")) return PackingMain(argv[0]);

  const auto start = Clock::now();
  std::vector<nlohmann::json> rows;
  // Memory rows: the three 1-rank rows at once (their step times share the CPU and are not used), then
  // each 2-rank row alone.
  const std::vector<std::vector<std::pair<int, int>>> batches = {{{1, 0}, {1, 1}, {1, 2}}, {{2, 0}}, {{2, 1}}, {{2, 2}}};
  for (const auto& batch : batches) {
    std::vector<FILE*> children;
    for (const auto& [world, zero] : batch) {
      for (FILE* f : StartRun(argv[0], world, zero, /*overlap=*/true, /*warmup=*/0)) children.push_back(f);
    }
    if (!CollectRows(children, rows)) return 1;
  }

  // Step time, side by side: rounds of ZeRO-0, ZeRO-2 overlapped, ZeRO-2 after backward (2 ranks each).
  struct Variant {
    const char* name;
    int zero;
    bool overlap;
  };
  const std::vector<Variant> variants = {{"zero0", 0, true}, {"zero2_overlapped", 2, true}, {"zero2_after_backward", 2, false}};
  const int repeats = static_cast<int>(std::max<int64_t>(1, I("repeats")));
  std::vector<std::vector<double>> seconds(variants.size());  // [variant][round]: the slower rank's step
  std::vector<std::vector<std::map<std::string, double>>> phases(variants.size());  // rank 0's split
  nlohmann::json timing = nlohmann::json::array();
  for (int round = 0; round < repeats; ++round) {
    for (size_t v = 0; v < variants.size(); ++v) {
      std::vector<nlohmann::json> ranks;
      if (!CollectRows(StartRun(argv[0], 2, variants[v].zero, variants[v].overlap, /*warmup=*/1), ranks)) return 1;
      double slowest = 0;
      for (const auto& r : ranks) slowest = std::max(slowest, r["step_seconds"].get<double>());
      seconds[v].push_back(slowest);
      for (const auto& r : ranks) {
        if (r["rank"].get<int>() == 0) phases[v].push_back(r["phases"].get<std::map<std::string, double>>());
      }
      timing.push_back({{"round", round}, {"variant", variants[v].name}, {"step_seconds", slowest},
                        {"phases_rank0", phases[v].back()}});
    }
  }

  // Table: one line per rank-0 row; memory in MiB, measured / planned.
  std::printf("| ranks | ZeRO | params | grads | optimizer | activations | workspace | peak measured | peak planned | error |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
  double error_max = 0;
  std::map<std::pair<int, int>, nlohmann::json> by;
  for (const auto& r : rows) {
    const double measured = r["measured"]["peak"].get<double>(), planned = r["planned"]["peak"].get<double>();
    error_max = std::max(error_max, std::abs(planned - measured) / measured);
    if (r["rank"].get<int>() != 0) continue;
    by[{r["world"].get<int>(), r["zero"].get<int>()}] = r;
    auto pair = [&](const char* m, const char* p) {
      return Mib(r["measured"][m].get<double>()) + " / " + Mib(r["planned"][p].get<double>());
    };
    std::printf("| %d | %d | %s | %s | %s | %s | %s | %s | %s | %.3f |\n", r["world"].get<int>(), r["zero"].get<int>(),
                pair("parameters", "weights").c_str(), pair("gradients", "gradients").c_str(),
                pair("optimizer", "optimizer").c_str(), pair("activations", "activations").c_str(),
                pair("workspace", "workspace").c_str(), Mib(measured).c_str(), Mib(planned).c_str(),
                std::abs(planned - measured) / measured);
  }
  const double state0 = by.at({1, 0})["measured"]["persistent_state"].get<double>();
  const double state2 = by.at({2, 2})["measured"]["persistent_state"].get<double>();
  const double with_transient0 = state0 + by.at({1, 0})["measured"]["transient_grads"].get<double>();
  const double with_transient2 = state2 + by.at({2, 2})["measured"]["transient_grads"].get<double>();

  // Step seconds per round, then medians, spread and the median split of each variant.
  std::printf("\n| 2 ranks, step s | ZeRO-0 | ZeRO-2 overlapped | ZeRO-2 after backward | overlapped / ZeRO-0 | after backward / ZeRO-0 |\n");
  std::printf("|---|---|---|---|---|---|\n");
  std::vector<double> pair_ratio, pair_sync_ratio;
  for (int round = 0; round < repeats; ++round) {
    pair_ratio.push_back(seconds[1][round] / seconds[0][round]);
    pair_sync_ratio.push_back(seconds[2][round] / seconds[0][round]);
    std::printf("| round %d | %.2f | %.2f | %.2f | %.3f | %.3f |\n", round + 1, seconds[0][round], seconds[1][round],
                seconds[2][round], pair_ratio.back(), pair_sync_ratio.back());
  }
  auto lo = [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); };
  auto hi = [](const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); };
  const double ratio = Median(seconds[1]) / Median(seconds[0]);
  const double sync_ratio = Median(seconds[2]) / Median(seconds[0]);
  std::printf("| median | %.2f | %.2f | %.2f | %.3f | %.3f |\n", Median(seconds[0]), Median(seconds[1]), Median(seconds[2]),
              ratio, sync_ratio);
  std::printf("| spread (min-max) | %.2f-%.2f | %.2f-%.2f | %.2f-%.2f | %.3f-%.3f | %.3f-%.3f |\n", lo(seconds[0]),
              hi(seconds[0]), lo(seconds[1]), hi(seconds[1]), lo(seconds[2]), hi(seconds[2]), lo(pair_ratio),
              hi(pair_ratio), lo(pair_sync_ratio), hi(pair_sync_ratio));
  std::printf("\n| rank 0, median s | forward | backward | accumulate | reduce | step |\n|---|---|---|---|---|---|\n");
  nlohmann::json step_seconds = nlohmann::json::object();
  for (size_t v = 0; v < variants.size(); ++v) {
    std::printf("| %s |", variants[v].name);
    nlohmann::json split = nlohmann::json::object();
    for (const char* part : {"forward", "backward", "accumulate", "reduce", "step"}) {
      std::vector<double> xs;
      for (const auto& p : phases[v]) xs.push_back(p.count(part) ? p.at(part) : 0.0);
      split[part] = Median(xs);
      std::printf(" %.2f |", Median(xs));
    }
    std::printf("\n");
    step_seconds[variants[v].name] = {{"median", Median(seconds[v])}, {"min", lo(seconds[v])}, {"max", hi(seconds[v])},
                                      {"rounds", seconds[v]}, {"median_split_rank0", split}};
  }
  std::printf("\nparameters %lld, tokens per sequence %lld; memory MiB measured / planned; %d timing rounds; wall %.0f s\n",
              static_cast<long long>(rows[0]["parameters"].get<int64_t>()),
              static_cast<long long>(rows[0]["tokens"].get<int64_t>()), repeats,
              std::chrono::duration<double>(Clock::now() - start).count());
  std::printf("plan_error_max %.3f  zero2_state_ratio %.3f (with stage 2's transient .grad: %.3f)  "
              "zero2_step_time_ratio %.3f (rounds %.3f-%.3f; after backward %.3f)\n",
              error_max, state2 / state0, with_transient2 / with_transient0, ratio, lo(pair_ratio), hi(pair_ratio),
              sync_ratio);
  if (I("json")) {
    nlohmann::json out = {{"plan_error_max", error_max},
                          {"zero2_state_ratio", state2 / state0},
                          {"zero2_state_ratio_with_transient_grads", with_transient2 / with_transient0},
                          {"zero2_step_time_ratio", ratio},
                          {"zero2_step_time_ratio_rounds", pair_ratio},
                          {"zero2_sync_step_time_ratio", sync_ratio},
                          {"step_seconds", step_seconds},
                          {"timing_runs", timing},
                          {"rows", rows}};
    std::printf("%s\n", out.dump().c_str());
  }
  return 0;
}
