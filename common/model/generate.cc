#include "common/model/generate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"

namespace r1r::model {

SampledToken SampleToken(const at::Tensor& logits, const SamplingParams& params, double uniform) {
  const bool greedy = params.temperature <= 0.0;
  const double temperature = greedy ? 1.0 : params.temperature;
  at::Tensor logp = torch::log_softmax(logits / temperature, -1);
  if (greedy) {
    const int64_t token = logits.argmax().item<int64_t>();
    return {token, logp[token].item<float>(), 0.0f};
  }
  // Sorted descending, stable so ties resolve to the lower id on every platform.
  auto [sorted_logp, sorted_ids] = torch::sort(logp, /*stable=*/true, /*dim=*/-1, /*descending=*/true);
  int64_t keep = sorted_logp.size(0);
  if (params.top_k > 0) keep = std::min(keep, params.top_k);
  at::Tensor probs = sorted_logp.narrow(0, 0, keep).exp().to(torch::kDouble);
  if (params.top_p < 1.0) {
    // Keep tokens while the mass before them is below top_p (always at least one), as HF does.
    at::Tensor mass_before = probs.cumsum(0) - probs;
    const int64_t within = mass_before.lt(params.top_p).sum().item<int64_t>();
    keep = std::max<int64_t>(1, within);
    probs = probs.narrow(0, 0, keep);
  }
  const double total = probs.sum().item<double>();
  const double target = uniform * total;
  at::Tensor cdf = probs.cumsum(0);
  int64_t pick = cdf.lt(target).sum().item<int64_t>();  // first index whose cdf >= target
  pick = std::min(pick, keep - 1);
  const int64_t token = sorted_ids[pick].item<int64_t>();
  const double p = probs[pick].item<double>() / total;
  return {token, logp[token].item<float>(), static_cast<float>(std::log(p))};
}

at::Tensor ApplyRepetitionPenalty(const at::Tensor& logits, const std::vector<int64_t>& seen, double penalty) {
  if (penalty == 1.0 || seen.empty()) return logits;
  std::vector<int64_t> distinct = seen;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  at::Tensor ids = torch::tensor(distinct, torch::kLong).to(logits.device());
  at::Tensor values = logits.index_select(0, ids);
  values = torch::where(values.lt(0), values * penalty, values / penalty);
  return logits.index_copy(0, ids, values);
}

namespace {

// Uniform double in [0, 1) from 53 random bits: the same on every standard library.
double NextUniform(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0); }

absl::Status ValidateRequests(const std::vector<GenerationRequest>& requests, const ModelConfig& config) {
  for (size_t i = 0; i < requests.size(); ++i) {
    const GenerationRequest& r = requests[i];
    if (r.prompt_ids.empty()) return absl::InvalidArgumentError(absl::StrCat("request ", i, ": empty prompt"));
    for (int64_t id : r.prompt_ids) {
      if (id < 0 || id >= config.text.vocab_size) {
        return absl::InvalidArgumentError(absl::StrCat("request ", i, ": token id ", id, " outside the vocabulary"));
      }
    }
    const bool has_pixels = r.pixel_values.defined() && r.pixel_values.numel() > 0;
    if (has_pixels && (!r.image_grid_thw.defined() || r.image_grid_thw.numel() % 3 != 0)) {
      return absl::InvalidArgumentError(absl::StrCat("request ", i, ": pixel_values need image_grid_thw [images, 3]"));
    }
    const SamplingParams& s = r.sampling;
    if (s.max_new_tokens <= 0 || s.top_p <= 0.0 || s.top_p > 1.0 || s.top_k < 0 || !std::isfinite(s.temperature) ||
        !(s.repetition_penalty > 0.0)) {
      return absl::InvalidArgumentError(absl::StrCat("request ", i,
                                                     ": need max_new_tokens > 0, 0 < top_p <= 1, top_k >= 0, a finite "
                                                     "temperature and repetition_penalty > 0"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<GenerationResult>> Generate(Qwen2_5_VL& model, const std::vector<GenerationRequest>& requests,
                                                       const GenerateOptions& options) {
  if (requests.empty()) return std::vector<GenerationResult>{};
  absl::Status valid = ValidateRequests(requests, model.config());
  if (!valid.ok()) return valid;
  const int64_t B = static_cast<int64_t>(requests.size());
  int64_t prompt_len = 0, max_new = 0;
  for (const auto& r : requests) {
    prompt_len = std::max<int64_t>(prompt_len, static_cast<int64_t>(r.prompt_ids.size()));
    max_new = std::max(max_new, r.sampling.max_new_tokens);
  }
  const bool left = options.padding_side == PaddingSide::kLeft;
  const at::Device device = model.options().device;

  std::vector<GenerationResult> results(B);
  std::vector<std::mt19937_64> rngs;
  std::vector<bool> done(B, false);
  for (const auto& r : requests) rngs.emplace_back(r.sampling.seed);

  try {
    torch::NoGradGuard no_grad;
    // Token ids and mask of the whole run [B, prompt_len + max_new], filled as we go (CPU).
    const int64_t total = prompt_len + max_new;
    at::Tensor ids = torch::full({B, total}, options.pad_token_id, torch::kLong);
    at::Tensor mask = torch::zeros({B, total}, torch::kLong);
    std::vector<at::Tensor> pixels, grids;
    for (int64_t b = 0; b < B; ++b) {
      const auto& p = requests[b].prompt_ids;
      const int64_t n = static_cast<int64_t>(p.size());
      const int64_t offset = left ? prompt_len - n : 0;
      ids[b].narrow(0, offset, n).copy_(torch::tensor(p, torch::kLong));
      mask[b].narrow(0, offset, n).fill_(1);
      if (requests[b].pixel_values.defined() && requests[b].pixel_values.numel() > 0) {
        pixels.push_back(requests[b].pixel_values.to(torch::kCPU, torch::kFloat));
        grids.push_back(requests[b].image_grid_thw.to(torch::kCPU, torch::kLong).view({-1, 3}));
      }
    }
    ForwardInput prefill;
    prefill.input_ids = ids.narrow(1, 0, prompt_len).to(device);
    prefill.attention_mask = mask.narrow(1, 0, prompt_len).to(device);
    if (!pixels.empty()) {
      prefill.pixel_values = torch::cat(pixels, 0);
      prefill.image_grid_thw = torch::cat(grids, 0);
    }
    std::unique_ptr<KvCache> cache;
    if (options.use_kv_cache) {
      cache = std::make_unique<KvCache>(model.config(), B, total, model.options().dtype, device);
      prefill.cache = cache.get();
    }
    auto out = model.Forward(prefill);
    if (!out.ok()) return out.status();
    // The last real prompt token of each row.
    std::vector<int64_t> last(B);
    for (int64_t b = 0; b < B; ++b) {
      last[b] = left ? prompt_len - 1 : static_cast<int64_t>(requests[b].prompt_ids.size()) - 1;
    }
    at::Tensor rows = torch::arange(B, torch::kLong).to(device);
    at::Tensor hidden_last = out->hidden.index({rows, torch::tensor(last, torch::kLong).to(device)});

    // The requests in the batch, in batch order. With the cache, finished rows leave it
    // (KvCache::KeepRows); otherwise every row stays and finished ones feed a masked pad token.
    std::vector<int64_t> active(B);
    std::iota(active.begin(), active.end(), 0);
    for (int64_t step = 0; step < max_new; ++step) {
      at::Tensor logits = model.ComputeLogits(hidden_last).to(torch::kCPU);  // [active, V] float32
      const int64_t column = prompt_len + step;
      bool any_active = false;
      for (size_t i = 0; i < active.size(); ++i) {
        const int64_t b = active[i];
        if (done[b]) continue;
        const SamplingParams& s = requests[b].sampling;
        GenerationResult& res = results[b];
        at::Tensor row = logits[static_cast<int64_t>(i)];
        if (!s.suppress_token_ids.empty()) {
          row = row.clone();
          for (int64_t id : s.suppress_token_ids) {
            if (id >= 0 && id < row.size(0)) row[id] = -std::numeric_limits<float>::infinity();
          }
        }
        if (s.repetition_penalty != 1.0) {
          std::vector<int64_t> seen = requests[b].prompt_ids;
          seen.insert(seen.end(), res.token_ids.begin(), res.token_ids.end());
          row = ApplyRepetitionPenalty(row, seen, s.repetition_penalty);
        }
        SampledToken t = SampleToken(row, s, NextUniform(rngs[b]));
        res.token_ids.push_back(t.token);
        res.logprobs.push_back(t.logprob);
        res.sampling_logprobs.push_back(t.sampling_logprob);
        ids[b][column] = t.token;
        mask[b][column] = 1;
        if (std::find(s.stop_token_ids.begin(), s.stop_token_ids.end(), t.token) != s.stop_token_ids.end()) {
          res.finish_reason = FinishReason::kStop;
          done[b] = true;
        } else if (static_cast<int64_t>(res.token_ids.size()) >= s.max_new_tokens) {
          res.finish_reason = FinishReason::kLength;
          done[b] = true;
        }
        any_active = any_active || !done[b];
      }
      if (!any_active || step + 1 == max_new) break;
      ForwardInput next;
      if (cache) {
        std::vector<int64_t> keep, still;  // positions in the batch, and their requests
        for (size_t i = 0; i < active.size(); ++i) {
          if (done[active[i]]) continue;
          keep.push_back(static_cast<int64_t>(i));
          still.push_back(active[i]);
        }
        if (options.drop_finished_rows && still.size() < active.size()) {
          cache->KeepRows(torch::tensor(keep, torch::kLong).to(device));
          active = std::move(still);
        }
        const at::Tensor rows_now = torch::tensor(active, torch::kLong);
        next.input_ids = ids.index_select(0, rows_now).narrow(1, column, 1).to(device);
        next.attention_mask = mask.index_select(0, rows_now).narrow(1, 0, column + 1).to(device);
        next.cache = cache.get();
        auto step_out = model.Forward(next);
        if (!step_out.ok()) return step_out.status();
        hidden_last = step_out->hidden.select(1, 0);
      } else {
        next.input_ids = ids.narrow(1, 0, column + 1).to(device);
        next.attention_mask = mask.narrow(1, 0, column + 1).to(device);
        next.pixel_values = prefill.pixel_values;
        next.image_grid_thw = prefill.image_grid_thw;
        auto full = model.Forward(next);
        if (!full.ok()) return full.status();
        hidden_last = full->hidden.select(1, column);
      }
    }
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("generate: ", e.what_without_backtrace()));
  }
  return results;
}

}  // namespace r1r::model
