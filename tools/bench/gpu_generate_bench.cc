// Generation speed of a real-sized checkpoint on a device (tools/gpu/generation_speed.sh): greedy
// generation of `new_tokens` tokens at each batch size, every prompt `prompt_tokens` long with one
// image of image_px x image_px (the same image, different text per row), through model::Generate
// (continuous batching, device sampling, causal prefill). Reports tokens/s end to end and of the decode
// alone, and the batch-1 decode rate as a fraction of the memory-bandwidth roofline (the bytes of the
// text weights, tied embedding included, plus the KV cache read per token, over `bandwidth_tbs`).
// Decode steps replay CUDA graphs (GenerateOptions::cuda_graphs) unless --cuda_graphs=0; the batch sizes
// in --eager_batches run again without them, for the side-by-side.
// Writes the prompts to --prompts_out (safetensors: input_ids [max batch, prompt_tokens] int64 and
// pixel_values of the one image) so transformers can generate from the same prompts.
//
// gpu_generate_bench --model_dir=DIR [--device=cuda] [--dtype=bf16] [--batches=1,32,128]
//   [--prompt_tokens=512] [--image_px=448] [--new_tokens=256] [--bandwidth_tbs=4.8]
//   [--cuda_graphs=1] [--eager_batches=] [--prompts_out=PATH] [--json_out=PATH]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "common/model/generate.h"
#include "common/model/kv_cache.h"
#include "common/model/model.h"
#include "common/model/safetensors.h"
#include "common/model/weights.h"

namespace {

using r1r::model::GenerateOptions;
using r1r::model::GenerationRequest;

std::map<std::string, std::string> ParseFlags(int argc, char** argv) {
  std::map<std::string, std::string> flags;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) continue;
    const size_t eq = a.find('=');
    if (eq == std::string::npos) {
      flags[a.substr(2)] = "1";
    } else {
      flags[a.substr(2, eq - 2)] = a.substr(eq + 1);
    }
  }
  return flags;
}

std::string Get(const std::map<std::string, std::string>& f, const std::string& k, const std::string& d) {
  auto it = f.find(k);
  return it == f.end() ? d : it->second;
}

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "gpu_generate_bench: %s\n", what.c_str());
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  const auto flags = ParseFlags(argc, argv);
  const std::string model_dir = Get(flags, "model_dir", "");
  if (model_dir.empty()) Fail("--model_dir is required");
  const at::Device device(Get(flags, "device", "cuda"));
  const std::string dtype_name = Get(flags, "dtype", "bf16");
  const at::ScalarType dtype = dtype_name == "fp32" ? at::kFloat : at::kBFloat16;
  auto list = [&](const std::string& name, const std::string& fallback) {
    std::vector<int64_t> values;
    std::stringstream ss(Get(flags, name, fallback));
    for (std::string item; std::getline(ss, item, ',');) values.push_back(std::atoll(item.c_str()));
    return values;
  };
  const std::vector<int64_t> batches = list("batches", "1,32,128");
  const bool cuda_graphs = Get(flags, "cuda_graphs", "1") != "0";
  // (batch, graphs) in the order they run: every batch size as asked, then the eager ones.
  std::vector<std::pair<int64_t, bool>> plan;
  for (int64_t b : batches) plan.emplace_back(b, cuda_graphs);
  if (cuda_graphs) {
    for (int64_t b : list("eager_batches", "")) plan.emplace_back(b, false);
  }
  const int64_t prompt_tokens = std::atoll(Get(flags, "prompt_tokens", "512").c_str());
  const int64_t image_px = std::atoll(Get(flags, "image_px", "448").c_str());
  const int64_t new_tokens = std::atoll(Get(flags, "new_tokens", "256").c_str());
  const double bandwidth = std::atof(Get(flags, "bandwidth_tbs", "4.8").c_str()) * 1e12;
  int64_t max_batch = 1;
  for (const auto& [b, graphs] : plan) max_batch = std::max(max_batch, b);

  torch::NoGradGuard no_grad;
  auto start = std::chrono::steady_clock::now();
  auto loaded = r1r::model::LoadPretrained(model_dir, {dtype, device});
  if (!loaded.ok()) Fail(std::string(loaded.status().message()));
  r1r::model::Qwen2_5_VL& model = **loaded;
  const r1r::model::ModelConfig& c = model.config();
  std::printf("loaded %s on %s (%s) in %.1f s\n", model_dir.c_str(), device.str().c_str(), dtype_name.c_str(),
              Seconds(start));

  // Bytes read per decoded token at batch 1: the text weights (the tied embedding is the output
  // projection) and the KV cache of an average context.
  int64_t weight_bytes = 0, all_bytes = 0;
  for (const auto& p : model.named_parameters()) {
    const int64_t bytes = p.value().numel() * static_cast<int64_t>(p.value().element_size());
    all_bytes += bytes;
    if (p.key().rfind("model.", 0) == 0 || p.key().rfind("lm_head.", 0) == 0) weight_bytes += bytes;
  }
  const int64_t kv_bytes = r1r::model::KvCache::BytesPerToken(c, dtype) * (prompt_tokens + new_tokens / 2);

  // Prompts: text, <|vision_start|>, the image's tokens, <|vision_end|>, text; prompt_tokens in all.
  const int64_t patch = c.vision.patch_size, merge = c.vision.spatial_merge_size;
  const int64_t grid = image_px / patch;
  const int64_t image_tokens = grid * grid / (merge * merge);
  const int64_t text = prompt_tokens - image_tokens - 2;
  if (text < 2) Fail("prompt_tokens too small for the image");
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1234);
  // Text ids below every special id (and in the vocabulary).
  const int64_t high = std::min({c.text.vocab_size, c.image_token_id, c.video_token_id, c.vision_start_token_id,
                                 c.vision_end_token_id, int64_t{150000}});
  at::Tensor text_ids = torch::randint(std::min<int64_t>(1000, high / 2), high, {max_batch, text}, gen, torch::kLong);
  at::Tensor input_ids = torch::empty({max_batch, prompt_tokens}, torch::kLong);
  const int64_t before = text / 2;
  input_ids.narrow(1, 0, before).copy_(text_ids.narrow(1, 0, before));
  input_ids.narrow(1, before, 1).fill_(c.vision_start_token_id);
  input_ids.narrow(1, before + 1, image_tokens).fill_(c.image_token_id);
  input_ids.narrow(1, before + 1 + image_tokens, 1).fill_(c.vision_end_token_id);
  input_ids.narrow(1, before + 2 + image_tokens, text - before).copy_(text_ids.narrow(1, before, text - before));
  at::Tensor pixels = torch::empty({grid * grid, c.vision.patch_dim()}, torch::kFloat).normal_(0.0, 1.0, gen);
  at::Tensor grid_thw = torch::tensor({int64_t{1}, grid, grid}, torch::kLong).view({1, 3});
  if (flags.count("prompts_out")) {
    absl::Status s = r1r::model::WriteSafetensors(Get(flags, "prompts_out", ""),
                                                  {{"input_ids", input_ids}, {"pixel_values", pixels}, {"image_grid_thw", grid_thw}});
    if (!s.ok()) Fail(std::string(s.message()));
  }
  auto requests_for = [&](int64_t batch, int64_t max_new) {
    std::vector<GenerationRequest> requests(batch);
    for (int64_t b = 0; b < batch; ++b) {
      at::Tensor row = input_ids[b].contiguous();
      requests[b].prompt_ids.assign(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + prompt_tokens);
      requests[b].pixel_values = pixels;
      requests[b].image_grid_thw = grid_thw;
      requests[b].sampling.temperature = 0.0;
      requests[b].sampling.max_new_tokens = max_new;
    }
    return requests;
  };
  double capture_s = 0;  // of the last generate call
  auto generate = [&](int64_t batch, int64_t max_new, bool graphs, std::vector<r1r::model::GenerationResult>* out) {
    r1r::model::GenerationStats stats;
    GenerateOptions o;
    o.stats = &stats;
    o.max_batch_rows = batch;
    o.cuda_graphs = graphs;
    o.max_prefill_tokens = std::atoll(Get(flags, "max_prefill_tokens", "16384").c_str());
    const auto requests = requests_for(batch, max_new);
    if (device.is_cuda()) torch::cuda::synchronize();
    const auto t0 = std::chrono::steady_clock::now();
    auto r = r1r::model::Generate(model, requests, o);
    if (device.is_cuda()) torch::cuda::synchronize();
    const double s = Seconds(t0);
    if (!r.ok()) Fail(std::string(r.status().message()));
    if (out != nullptr) *out = *r;
    capture_s = stats.decode_graph_capture_seconds;
    return s;
  };
  std::printf("prompts: %lld tokens (%lld image tokens of a %lldx%lld image), %lld new tokens, greedy\n",
              static_cast<long long>(prompt_tokens), static_cast<long long>(image_tokens),
              static_cast<long long>(image_px), static_cast<long long>(image_px), static_cast<long long>(new_tokens));
  start = std::chrono::steady_clock::now();
  generate(1, 8, cuda_graphs, nullptr);  // warm-up: kernels, allocator
  std::printf("warm-up %.1f s\n\n", Seconds(start));

  std::printf("| batch | CUDA graphs | prefill + 1 token, s | total, s | of which capturing, s | tokens/s (end to end) | "
              "decode tokens/s |\n");
  std::printf("|------:|:-----------:|---------------------:|---------:|----------------------:|----------------------:|"
              "----------------:|\n");
  // The JSON is rewritten after every batch size, so a run cut short by a timeout keeps what it measured.
  std::ostringstream head;
  head << "{\"device\": \"" << device.str() << "\", \"dtype\": \"" << dtype_name << "\", \"prompt_tokens\": "
       << prompt_tokens << ", \"image_px\": " << image_px << ", \"new_tokens\": " << new_tokens
       << ", \"weight_bytes_per_token\": " << weight_bytes << ", \"kv_bytes_per_token\": " << kv_bytes
       << ", \"all_weight_bytes\": " << all_bytes;
  const double roofline = bandwidth / static_cast<double>(weight_bytes + kv_bytes);
  std::vector<std::string> runs;
  double batch1_decode = 0;
  std::vector<int64_t> batch1_tokens;
  auto compose = [&] {
    std::ostringstream json;
    json << head.str() << ", \"runs\": [";
    for (size_t i = 0; i < runs.size(); ++i) json << (i ? ", " : "") << runs[i];
    json << "], \"bandwidth_bytes_per_s\": " << bandwidth << ", \"roofline_tokens_per_s\": " << roofline;
    if (batch1_decode > 0) {
      json << ", \"batch1_decode_tokens_per_s\": " << batch1_decode
           << ", \"batch1_roofline_fraction\": " << batch1_decode / roofline << ", \"batch1_tokens\": [";
      for (size_t i = 0; i < batch1_tokens.size(); ++i) json << (i ? ", " : "") << batch1_tokens[i];
      json << "]";
    }
    json << "}";
    if (flags.count("json_out")) {
      std::ofstream out(Get(flags, "json_out", ""));
      out << json.str() << "\n";
    }
    return json.str();
  };
  for (const auto& [b, graphs] : plan) {
    const double prefill = generate(b, 1, graphs, nullptr);
    std::vector<r1r::model::GenerationResult> results;
    const double total = generate(b, new_tokens, graphs, &results);
    int64_t tokens = 0;
    for (const auto& r : results) tokens += static_cast<int64_t>(r.token_ids.size());
    // Decode alone: the full run less the prefill run (0 when noise makes that difference meaningless).
    const double decode_rate = total > 1.05 * prefill ? static_cast<double>(tokens - b) / (total - prefill) : 0.0;
    if (b == 1 && graphs == cuda_graphs) {
      batch1_decode = decode_rate;
      batch1_tokens = results[0].token_ids;
    }
    std::printf("| %5lld | %11s | %20.3f | %8.3f | %21.3f | %21.1f | %15.1f |\n", static_cast<long long>(b),
                graphs ? "yes" : "no", prefill, total, capture_s, tokens / total, decode_rate);
    std::fflush(stdout);
    std::ostringstream run;
    run << "{\"batch\": " << b << ", \"cuda_graphs\": " << (graphs ? "true" : "false") << ", \"prefill_s\": " << prefill << ", \"total_s\": " << total << ", \"capture_s\": " << capture_s
        << ", \"tokens\": " << tokens << ", \"tokens_per_s\": " << tokens / total
        << ", \"decode_tokens_per_s\": " << decode_rate << "}";
    runs.push_back(run.str());
    compose();
  }
  if (batch1_decode > 0) {
    std::printf("\nbatch-1 decode: %.1f tokens/s; roofline %.1f tokens/s (%.2f GB of weights + %.3f GB of KV cache per "
                "token at %.1f TB/s): %.1f%%\n",
                batch1_decode, roofline, weight_bytes / 1e9, kv_bytes / 1e9, bandwidth / 1e12,
                100.0 * batch1_decode / roofline);
  }
  std::printf("%s\n", compose().c_str());
  return 0;
}
