// Decode throughput of the Qwen2.5-VL implementation with and without the KV cache on a tiny random
// model, KV-cache bytes per token, and the generation features against what they replace: the device
// sampler against the host sort (152k vocabulary, batch 32), one prefill for K = 5 samples against 5
// prefills (>= 256 prompt tokens with an image), continuous batching against static chunks (64 ragged
// requests). Usage: model_decode_bench [new_tokens=128] [prompt_len=64] [--json] [--sampler-only]
// [--continuous-only]; with
// --json the last line is one JSON object with device_sampling_speedup (T = 1),
// device_sampling_topp_speedup (top-p 0.9), device_sampling_greedy_speedup, shared_prefill_speedup and
// continuous_batching_speedup (--sampler-only: the sampler rows and their three keys alone;
// --continuous-only: the continuous-batching row alone, fastest of 3 runs per side, and its key).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
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
                    int64_t* tokens_out, bool drop_finished_rows = true, bool continuous = true) {
  GenerateOptions options;
  options.use_kv_cache = cache;
  options.drop_finished_rows = drop_finished_rows;
  options.continuous_batching = continuous;
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

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::vector<r1r::model::GenerationResult> MustGenerate(r1r::model::Qwen2_5_VL& model,
                                                       const std::vector<GenerationRequest>& requests,
                                                       const GenerateOptions& options, double* seconds) {
  const auto start = std::chrono::steady_clock::now();
  auto result = r1r::model::Generate(model, requests, options);
  *seconds = Seconds(start);
  if (!result.ok()) {
    std::fprintf(stderr, "generate failed: %s\n", std::string(result.status().message()).c_str());
    std::exit(1);
  }
  return *result;
}

bool SameTokens(const std::vector<r1r::model::GenerationResult>& a, const std::vector<r1r::model::GenerationResult>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].token_ids != b[i].token_ids) return false;
  }
  return true;
}

int64_t Tokens(const std::vector<r1r::model::GenerationResult>& results) {
  int64_t n = 0;
  for (const auto& r : results) n += static_cast<int64_t>(r.token_ids.size());
  return n;
}

// The sampler alone: 152k vocabulary, batch 32, against today's host sort (SampleToken per row), in
// ms per step for each setting: T = 1 without top-k/top-p (the RL setting), top-p 0.9 and greedy.
struct SamplingSpeedups {
  double plain = 0, top_p = 0, greedy = 0;
};

SamplingSpeedups DeviceSamplingSpeedups() {
  const int64_t batch = 32, vocab = 151936;
  torch::manual_seed(0);
  at::Tensor logits = torch::randn({batch, vocab}) * 3.0;
  std::mt19937_64 rng(1);
  auto uniforms = [&] {
    std::vector<double> u(batch);
    for (double& x : u) x = static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0);
    return u;
  };
  std::printf("\nsampler alone: %lld rows x %lld vocabulary, float32 logits on the CPU (the device here)\n\n",
              static_cast<long long>(batch), static_cast<long long>(vocab));
  std::printf("| setting | host sort (before), ms/step | device sampler (after), ms/step | speed-up |\n");
  std::printf("|:--------|----------------------------:|--------------------------------:|---------:|\n");
  SamplingSpeedups out;
  struct Setting {
    const char* name;
    r1r::model::SamplingParams params;
    double* speedup;
  };
  for (const Setting& setting : {Setting{"T = 1", {.temperature = 1.0}, &out.plain},
                                 Setting{"T = 1, top-p 0.9", {.top_p = 0.9}, &out.top_p},
                                 Setting{"greedy", {.temperature = 0.0}, &out.greedy}}) {
    const std::vector<r1r::model::SamplingParams> params(batch, setting.params);
    const int reps = 3;
    r1r::model::SampleTokens(logits, params, uniforms());  // warm-up
    auto start = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; ++r) {
      const std::vector<double> u = uniforms();
      at::Tensor host = logits.to(torch::kCPU);
      for (int64_t i = 0; i < batch; ++i) r1r::model::SampleToken(host[i], setting.params, u[i]);
    }
    const double host_ms = Seconds(start) * 1e3 / reps;
    start = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; ++r) r1r::model::SampleTokens(logits, params, uniforms());
    const double device_ms = Seconds(start) * 1e3 / reps;
    std::printf("| %s | %.1f | %.1f | %.1fx |\n", setting.name, host_ms, device_ms, host_ms / device_ms);
    *setting.speedup = host_ms / device_ms;
  }
  return out;
}

// Continuous batching: 64 ragged requests, 16 rows at a time, against static chunks of 16 (the
// actor's --max-batch of before: each chunk runs until its longest row is done). Each side's seconds
// are printed apart (and with the step counts: decode forwards and rows summed over them); with reps > 1
// the two sides alternate and each side's fastest run is taken.
double ContinuousBatchingSpeedup(r1r::model::Qwen2_5_VL& model, int64_t new_tokens, int reps) {
  const int64_t n = 64, rows = 16;
  std::vector<GenerationRequest> requests(n);
  std::mt19937_64 rng(3);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t len = 16 + static_cast<int64_t>(rng() % 48);
    for (int64_t t = 0; t < len; ++t) requests[i].prompt_ids.push_back((i * 53 + t * 11) % 4000 + 1);
    requests[i].sampling.temperature = 0.0;
    requests[i].sampling.max_new_tokens = 1 + static_cast<int64_t>(rng() % new_tokens);
  }
  double static_s = 0, continuous_s = 0;
  r1r::model::GenerationStats static_stats, continuous_stats;
  std::vector<r1r::model::GenerationResult> chunked, continuous;
  for (int rep = 0; rep < reps; ++rep) {
    double chunks_s = 0;
    chunked.clear();
    static_stats = {};
    for (int64_t begin = 0; begin < n; begin += rows) {
      std::vector<GenerationRequest> chunk(requests.begin() + begin, requests.begin() + std::min(n, begin + rows));
      GenerateOptions static_options;
      static_options.continuous_batching = false;
      r1r::model::GenerationStats chunk_stats;
      static_options.stats = &chunk_stats;
      double s = 0;
      auto part = MustGenerate(model, chunk, static_options, &s);
      chunks_s += s;
      static_stats.prefill_tokens += chunk_stats.prefill_tokens;
      static_stats.decode_steps += chunk_stats.decode_steps;
      static_stats.decode_rows += chunk_stats.decode_rows;
      chunked.insert(chunked.end(), part.begin(), part.end());
    }
    GenerateOptions continuous_options;
    continuous_options.max_batch_rows = rows;
    continuous_options.stats = &continuous_stats;
    double s = 0;
    continuous = MustGenerate(model, requests, continuous_options, &s);
    static_s = rep == 0 ? chunks_s : std::min(static_s, chunks_s);
    continuous_s = rep == 0 ? s : std::min(continuous_s, s);
  }
  const double speedup = static_s / continuous_s;
  std::printf("\n%lld requests, prompts 16..63 tokens, 1..%lld new tokens (greedy), %lld rows at a time%s\n\n",
              static_cast<long long>(n), static_cast<long long>(new_tokens), static_cast<long long>(rows),
              reps > 1 ? ", fastest of the runs" : "");
  std::printf("| batching | new tokens | seconds | tokens/s | speed-up | decode steps | decode rows |\n");
  std::printf("|:---------|-----------:|--------:|---------:|---------:|-------------:|------------:|\n");
  std::printf("| static chunks of %lld | %lld | %.3f | %.1f | 1.0x | %lld | %lld |\n", static_cast<long long>(rows),
              static_cast<long long>(Tokens(chunked)), static_s, Tokens(chunked) / static_s,
              static_cast<long long>(static_stats.decode_steps), static_cast<long long>(static_stats.decode_rows));
  std::printf("| continuous, %lld rows | %lld | %.3f | %.1f | %.2fx | %lld | %lld |\n", static_cast<long long>(rows),
              static_cast<long long>(Tokens(continuous)), continuous_s, Tokens(continuous) / continuous_s, speedup,
              static_cast<long long>(continuous_stats.decode_steps),
              static_cast<long long>(continuous_stats.decode_rows));
  std::printf("\nsame greedy tokens: %s\n", SameTokens(chunked, continuous) ? "yes" : "NO");
  std::printf("continuous batching: static %.3f s, continuous %.3f s\n", static_s, continuous_s);
  return speedup;
}

int main(int argc, char** argv) {
  bool json = false, sampler_only = false, continuous_only = false;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--json") {
      json = true;
    } else if (std::string(argv[i]) == "--sampler-only") {
      sampler_only = true;
    } else if (std::string(argv[i]) == "--continuous-only") {
      continuous_only = true;
    } else {
      positional.push_back(argv[i]);
    }
  }
  if (sampler_only) {
    const SamplingSpeedups sampling = DeviceSamplingSpeedups();
    if (json) {
      std::printf("{\"device_sampling_speedup\": %.3f, \"device_sampling_topp_speedup\": %.3f, "
                  "\"device_sampling_greedy_speedup\": %.3f}\n",
                  sampling.plain, sampling.top_p, sampling.greedy);
    }
    return 0;
  }
  const int64_t new_tokens = positional.size() > 0 ? std::atoll(positional[0].c_str()) : 128;
  const int64_t prompt_len = positional.size() > 1 ? std::atoll(positional[1].c_str()) : 64;
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
  if (continuous_only) {
    // The continuous-batching row alone: a warm-up generate, then 3 alternating runs of each side.
    std::vector<GenerationRequest> warm(4);
    for (auto& r : warm) {
      r.prompt_ids.assign(32, 7);
      r.sampling.temperature = 0.0;
      r.sampling.max_new_tokens = 8;
    }
    double warm_s = 0;
    MustGenerate(**model, warm, {}, &warm_s);
    const double speedup = ContinuousBatchingSpeedup(**model, new_tokens, /*reps=*/3);
    if (json) std::printf("{\"continuous_batching_speedup\": %.3f}\n", speedup);
    return 0;
  }
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
  const double kept = TimeGenerate(**model, ragged, true, &kept_tokens, /*drop_finished_rows=*/false, false);
  const double dropped = TimeGenerate(**model, ragged, true, &dropped_tokens, /*drop_finished_rows=*/true, false);
  std::printf("| stay in the batch | %10lld | %7.3f | %8.1f | %8s |\n", static_cast<long long>(kept_tokens), kept,
              kept_tokens / kept, "1.0x");
  std::printf("| leave the batch | %10lld | %7.3f | %8.1f | %7.1fx |\n", static_cast<long long>(dropped_tokens),
              dropped, dropped_tokens / dropped, kept / dropped);

  // The static batch of before (prompts padded to one width, finished rows copied out) for reference.
  {
    GenerateOptions static_options;
    static_options.continuous_batching = false;
    double static_s = 0, continuous_s = 0;
    auto a = MustGenerate(**model, ragged, static_options, &static_s);
    auto b = MustGenerate(**model, ragged, {}, &continuous_s);
    std::printf("| continuous batching (all rows at once) | %10lld | %7.3f | %8.1f | %7.1fx |\n",
                static_cast<long long>(Tokens(b)), continuous_s, Tokens(b) / continuous_s, kept / continuous_s);
    std::printf("\nsame greedy tokens as the static batch: %s\n", SameTokens(a, b) ? "yes" : "NO");
  }

  const SamplingSpeedups sampling = DeviceSamplingSpeedups();

  // One prefill for K = 5 samples: a 272-token prompt (208 text + a 16x16-patch image = 64 tokens).
  double shared_speedup = 0;
  {
    const ModelConfig& c = config;
    const int64_t grid = 16, K = 5, text = 208, shared_new = std::min<int64_t>(new_tokens, 32);
    GenerationRequest base;
    for (int64_t i = 0; i < text / 2; ++i) base.prompt_ids.push_back((i * 31) % 4000 + 1);
    base.prompt_ids.push_back(c.vision_start_token_id);
    for (int64_t i = 0; i < grid * grid / 4; ++i) base.prompt_ids.push_back(c.image_token_id);
    base.prompt_ids.push_back(c.vision_end_token_id);
    for (int64_t i = 0; i < text / 2; ++i) base.prompt_ids.push_back((i * 17) % 4000 + 1);
    torch::manual_seed(5);
    base.pixel_values = torch::randn({grid * grid, c.vision.patch_dim()});
    base.image_grid_thw = torch::tensor({int64_t{1}, grid, grid}, torch::kLong).view({1, 3});
    base.sampling.max_new_tokens = shared_new;
    std::printf("\nK = %lld samples of one prompt (%zu tokens with a %lldx%lld-patch image), %lld new tokens each\n\n",
                static_cast<long long>(K), base.prompt_ids.size(), static_cast<long long>(grid),
                static_cast<long long>(grid), static_cast<long long>(shared_new));
    std::printf("| sampling | prefills | seconds | speed-up | same tokens |\n");
    std::printf("|:---------|:---------|--------:|---------:|:-----------:|\n");
    for (double temperature : {1.0, 0.0}) {
      std::vector<GenerationRequest> votes(K, base);
      for (int64_t k = 0; k < K; ++k) {
        votes[k].sampling.temperature = temperature;
        votes[k].sampling.seed = 7 + k;
      }
      GenerateOptions independent_options;
      independent_options.share_prefill = false;
      double independent_s = 0, shared_s = 0;
      MustGenerate(**model, {base}, {}, &shared_s);  // warm-up
      auto independent = MustGenerate(**model, votes, independent_options, &independent_s);
      auto shared = MustGenerate(**model, votes, {}, &shared_s);
      const char* name = temperature > 0 ? "T = 1, seeds 7..11" : "greedy";
      std::printf("| %s | %lld (one per request) | %7.3f | %8s | |\n", name, static_cast<long long>(K), independent_s,
                  "1.0x");
      std::printf("| %s | 1 (shared) | %7.3f | %7.1fx | %s |\n", name, shared_s, independent_s / shared_s,
                  SameTokens(independent, shared) ? "yes" : "NO");
      if (temperature > 0) shared_speedup = independent_s / shared_s;
    }
  }

  const double continuous_speedup = ContinuousBatchingSpeedup(**model, new_tokens, /*reps=*/1);

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
  if (json) {
    std::printf("{\"device_sampling_speedup\": %.3f, \"shared_prefill_speedup\": %.3f, "
                "\"continuous_batching_speedup\": %.3f, \"device_sampling_topp_speedup\": %.3f, "
                "\"device_sampling_greedy_speedup\": %.3f}\n",
                sampling.plain, shared_speedup, continuous_speedup, sampling.top_p, sampling.greedy);
  }
  return 0;
}
