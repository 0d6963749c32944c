// Decode throughput of the Qwen2.5-VL implementation with and without the KV cache on a tiny random
// model, and KV-cache bytes per token. Usage: model_decode_bench [new_tokens=128] [prompt_len=64]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "common/model/config.h"
#include "common/model/generate.h"
#include "common/model/kv_cache.h"
#include "common/model/model.h"

namespace {

using r1r::model::GenerateOptions;
using r1r::model::GenerationRequest;
using r1r::model::ModelConfig;

double TimeGenerate(r1r::model::Qwen2_5_VL& model, const std::vector<GenerationRequest>& requests, bool cache,
                    int64_t* tokens_out, bool drop_finished_rows = true) {
  GenerateOptions options;
  options.use_kv_cache = cache;
  options.drop_finished_rows = drop_finished_rows;
  const auto start = std::chrono::steady_clock::now();
  auto result = r1r::model::Generate(model, requests, options);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!result.ok()) {
    std::fprintf(stderr, "generate failed: %s\n", std::string(result.status().message()).c_str());
    std::exit(1);
  }
  int64_t tokens = 0;
  for (const auto& r : *result) tokens += static_cast<int64_t>(r.token_ids.size());
  *tokens_out = tokens;
  return seconds;
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t new_tokens = argc > 1 ? std::atoll(argv[1]) : 128;
  const int64_t prompt_len = argc > 2 ? std::atoll(argv[2]) : 64;
  r1r::model::TinyConfigOptions tiny;
  tiny.vocab_size = 4096;
  tiny.hidden_size = 256;
  tiny.intermediate_size = 704;
  tiny.num_layers = 4;
  tiny.num_heads = 8;
  tiny.num_kv_heads = 2;
  const ModelConfig config = r1r::model::MakeTinyConfig(tiny);
  auto model = r1r::model::Qwen2_5_VL::Create(config, {}, /*seed=*/1);
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", std::string(model.status().message()).c_str());
    return 1;
  }
  std::printf("model: hidden %lld, layers %lld, heads %lld/%lld kv, vocab %lld, float32 CPU, torch threads %d\n",
              static_cast<long long>(tiny.hidden_size), static_cast<long long>(tiny.num_layers),
              static_cast<long long>(tiny.num_heads), static_cast<long long>(tiny.num_kv_heads),
              static_cast<long long>(tiny.vocab_size), at::get_num_threads());
  std::printf("prompt %lld tokens, %lld new tokens per sequence, greedy, text only\n\n",
              static_cast<long long>(prompt_len), static_cast<long long>(new_tokens));
  std::printf("| batch | KV cache | new tokens | seconds | tokens/s | speed-up |\n");
  std::printf("|------:|:--------:|-----------:|--------:|---------:|---------:|\n");
  for (int64_t batch : {1, 4}) {
    std::vector<GenerationRequest> requests(batch);
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t i = 0; i < prompt_len; ++i) requests[b].prompt_ids.push_back((b * 131 + i * 17) % 4000 + 1);
      requests[b].sampling.temperature = 0.0;
      requests[b].sampling.max_new_tokens = new_tokens;
    }
    int64_t warm_tokens = 0;
    std::vector<GenerationRequest> warm = requests;
    for (auto& r : warm) r.sampling.max_new_tokens = 4;
    TimeGenerate(**model, warm, true, &warm_tokens);
    int64_t cached_tokens = 0, full_tokens = 0;
    const double cached = TimeGenerate(**model, requests, true, &cached_tokens);
    const double full = TimeGenerate(**model, requests, false, &full_tokens);
    std::printf("| %5lld | %8s | %10lld | %7.3f | %8.1f | %8s |\n", static_cast<long long>(batch), "no",
                static_cast<long long>(full_tokens), full, full_tokens / full, "1.0x");
    std::printf("| %5lld | %8s | %10lld | %7.3f | %8.1f | %7.1fx |\n", static_cast<long long>(batch), "yes",
                static_cast<long long>(cached_tokens), cached, cached_tokens / cached,
                (cached_tokens / cached) / (full_tokens / full));
  }

  // Sampled evaluation and rollouts end at different lengths: the longest row sets the step count.
  const int64_t ragged_batch = 16;
  std::printf("\nragged batch: %lld sequences, row b stops after %lld * (b + 1) / %lld new tokens, KV cache\n\n",
              static_cast<long long>(ragged_batch), static_cast<long long>(new_tokens),
              static_cast<long long>(ragged_batch));
  std::printf("| finished rows | new tokens | seconds | tokens/s | speed-up |\n");
  std::printf("|:--------------|-----------:|--------:|---------:|---------:|\n");
  std::vector<GenerationRequest> ragged(ragged_batch);
  for (int64_t b = 0; b < ragged_batch; ++b) {
    for (int64_t i = 0; i < prompt_len; ++i) ragged[b].prompt_ids.push_back((b * 97 + i * 13) % 4000 + 1);
    ragged[b].sampling.temperature = 0.0;
    ragged[b].sampling.max_new_tokens = std::max<int64_t>(1, new_tokens * (b + 1) / ragged_batch);
  }
  int64_t kept_tokens = 0, dropped_tokens = 0;
  const double kept = TimeGenerate(**model, ragged, true, &kept_tokens, /*drop_finished_rows=*/false);
  const double dropped = TimeGenerate(**model, ragged, true, &dropped_tokens, /*drop_finished_rows=*/true);
  std::printf("| stay in the batch | %10lld | %7.3f | %8.1f | %8s |\n", static_cast<long long>(kept_tokens), kept,
              kept_tokens / kept, "1.0x");
  std::printf("| leave the batch | %10lld | %7.3f | %8.1f | %7.1fx |\n", static_cast<long long>(dropped_tokens),
              dropped, dropped_tokens / dropped, kept / dropped);

  std::printf("\nKV-cache bytes per token per sequence (2 x layers x kv_heads x head_dim x element size):\n\n");
  std::printf("| model | layers | kv heads | head dim | float32 | bfloat16 |\n");
  std::printf("|:------|-------:|---------:|---------:|--------:|---------:|\n");
  auto row = [](const char* name, const ModelConfig& c) {
    std::printf("| %s | %lld | %lld | %lld | %lld | %lld |\n", name, static_cast<long long>(c.text.num_hidden_layers),
                static_cast<long long>(c.text.num_key_value_heads), static_cast<long long>(c.text.head_dim),
                static_cast<long long>(r1r::model::KvCache::BytesPerToken(c, at::kFloat)),
                static_cast<long long>(r1r::model::KvCache::BytesPerToken(c, at::kBFloat16)));
  };
  row("bench tiny", config);
  ModelConfig q3b = config, q7b = config;  // only the text sizes matter for the cache
  q3b.text.num_hidden_layers = 36;
  q3b.text.num_key_value_heads = 2;
  q3b.text.head_dim = 128;
  q7b.text.num_hidden_layers = 28;
  q7b.text.num_key_value_heads = 4;
  q7b.text.head_dim = 128;
  row("Qwen2.5-VL-3B", q3b);
  row("Qwen2.5-VL-7B", q7b);
  return 0;
}
