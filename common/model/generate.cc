#include "common/model/generate.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
#include <numeric>
#include <random>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "common/model/decode_graphs.h"

namespace r1r::model {

namespace {

// Uniform double in [0, 1) from 53 random bits: the same on every standard library.
double NextUniform(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0); }

absl::Status ValidateRequest(size_t i, const GenerationRequest& r, const ModelConfig& config) {
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
  return absl::OkStatus();
}

absl::Status ValidateRequests(const std::vector<GenerationRequest>& requests, const ModelConfig& config) {
  for (size_t i = 0; i < requests.size(); ++i) {
    if (absl::Status s = ValidateRequest(i, requests[i], config); !s.ok()) return s;
  }
  return absl::OkStatus();
}

bool HasPixels(const GenerationRequest& r) { return r.pixel_values.defined() && r.pixel_values.numel() > 0; }

// FNV-1a over the prompt ids: a cheap first test before SamePrompt.
uint64_t PromptHash(const GenerationRequest& r) {
  uint64_t h = 1469598103934665603ull;
  for (int64_t id : r.prompt_ids) h = (h ^ static_cast<uint64_t>(id)) * 1099511628211ull;
  return h;
}

// The same prompt: ids, and the same images (the same tensors, or equal ones).
bool SamePrompt(const GenerationRequest& a, const GenerationRequest& b) {
  if (a.prompt_ids != b.prompt_ids || HasPixels(a) != HasPixels(b)) return false;
  if (!HasPixels(a)) return true;
  auto same = [](const at::Tensor& x, const at::Tensor& y) {
    if (x.unsafeGetTensorImpl() == y.unsafeGetTensorImpl()) return true;
    return x.sizes() == y.sizes() && x.scalar_type() == y.scalar_type() && x.device() == y.device() && torch::equal(x, y);
  };
  return same(a.pixel_values, b.pixel_values) && same(a.image_grid_thw.to(torch::kCPU, torch::kLong).view({-1}),
                                                      b.image_grid_thw.to(torch::kCPU, torch::kLong).view({-1}));
}

bool IsStop(const SamplingParams& s, int64_t token) {
  return std::find(s.stop_token_ids.begin(), s.stop_token_ids.end(), token) != s.stop_token_ids.end();
}

// The static batch: every prompt padded to one width and prefilled together; one decode step for all
// rows; finished rows leave by copying the cache (drop_finished_rows) or stay as padding. Also the
// recompute reference (no cache).
absl::StatusOr<std::vector<GenerationResult>> GenerateStatic(Qwen2_5_VL& model,
                                                             const std::vector<GenerationRequest>& requests,
                                                             const GenerateOptions& options) {
  const int64_t B = static_cast<int64_t>(requests.size());
  int64_t prompt_len = 0, max_new = 0;
  for (const auto& r : requests) {
    prompt_len = std::max<int64_t>(prompt_len, static_cast<int64_t>(r.prompt_ids.size()));
    max_new = std::max(max_new, r.sampling.max_new_tokens);
  }
  const bool left = options.padding_side == PaddingSide::kLeft;
  const at::Device device = model.options().device;
  GenerationStats stats;

  std::vector<GenerationResult> results(B);
  std::vector<std::mt19937_64> rngs;
  std::vector<bool> done(B, false);
  for (const auto& r : requests) rngs.emplace_back(r.sampling.seed);

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
    if (HasPixels(requests[b])) {
      pixels.push_back(requests[b].pixel_values.to(torch::kCPU, torch::kFloat));
      grids.push_back(requests[b].image_grid_thw.to(torch::kCPU, torch::kLong).view({-1, 3}));
    }
    stats.prefill_tokens += n;
  }
  stats.prefill_rows = B;
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
    if (options.cancelled && options.cancelled()) return absl::CancelledError("generation cancelled");
    at::Tensor logits = model.ComputeLogits(hidden_last);  // [active, V] float32, on the device
    const int64_t column = prompt_len + step;
    std::vector<int64_t> sampled_rows;  // positions in the batch of the rows still generating
    std::vector<RowToSample> to_sample;
    for (size_t i = 0; i < active.size(); ++i) {
      const int64_t b = active[i];
      if (done[b]) continue;
      sampled_rows.push_back(static_cast<int64_t>(i));
      to_sample.push_back({&requests[b].sampling, &requests[b].prompt_ids, &results[b].token_ids, NextUniform(rngs[b])});
    }
    if (static_cast<int64_t>(sampled_rows.size()) < logits.size(0)) {
      logits = logits.index_select(0, torch::tensor(sampled_rows, torch::kLong).to(device));
    }
    std::vector<SampledToken> sampled = SampleRows(logits, to_sample, options.device_sampling);
    bool any_active = false;
    for (size_t j = 0; j < sampled_rows.size(); ++j) {
      const int64_t b = active[sampled_rows[j]];
      const SamplingParams& s = requests[b].sampling;
      GenerationResult& res = results[b];
      const SampledToken& t = sampled[j];
      res.token_ids.push_back(t.token);
      res.logprobs.push_back(t.logprob);
      res.sampling_logprobs.push_back(t.sampling_logprob);
      ids[b][column] = t.token;
      mask[b][column] = 1;
      if (IsStop(s, t.token)) {
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
    ++stats.decode_steps;
    stats.decode_rows += static_cast<int64_t>(active.size());
    stats.max_active_rows = std::max<int64_t>(stats.max_active_rows, static_cast<int64_t>(active.size()));
  }
  if (options.stats != nullptr) *options.stats = stats;
  if (options.on_result) {
    for (size_t i = 0; i < results.size(); ++i) options.on_result(i, results[i]);
  }
  return results;
}

}  // namespace


// ---- continuous batching ----

struct GenerationEngine::Impl {
  struct Request {
    GenerationRequest request;
    GenerationResult result;
    std::mt19937_64 rng;
    int64_t budget = 0;  // prompt + max_new_tokens
    uint64_t hash = 0;   // PromptHash
    bool cancelled = false;
  };

  Impl(Qwen2_5_VL& m, const GenerateOptions& o)
      : model(m), options(o), device(m.options().device), dtype(m.options().dtype) {}

  void Reserve(int64_t rows, int64_t capacity) {
    if (cache == nullptr) {
      cache = std::make_unique<KvCache>(model.config(), std::max<int64_t>(1, rows), std::max<int64_t>(1, capacity),
                                        dtype, device);
      cache->EnableSlots();
    } else if (rows > cache->num_slots() || capacity > cache->capacity()) {
      // Rare (a longer request, or more rows than before): grow by at least half.
      *cache = cache->Grown(model.config(), std::max(rows, cache->num_slots() + cache->num_slots() / 2),
                            std::max(capacity, cache->capacity()));
    }
  }

  void Reset() {
    prefilled.clear();
    requests.clear();
    waiting.clear();
    row_id.clear();
    hidden = at::Tensor();
    tokens_in_flight = 0;
    if (cache) cache->set_active_rows(0);
  }

  absl::StatusOr<std::vector<std::pair<int64_t, GenerationResult>>> Step();

  Qwen2_5_VL& model;
  GenerateOptions options;
  at::Device device;
  at::ScalarType dtype;
  std::map<int64_t, Request> requests;  // waiting and running
  std::deque<int64_t> waiting;
  std::unique_ptr<KvCache> cache;  // slots; row r of the active rows runs request row_id[r]
  std::vector<int64_t> row_id;
  at::Tensor hidden;  // [rows, hidden]: the last hidden state of each running row, to sample from
  // Prompts prefilled at an earlier step whose other samples still wait for a row (share_prefill).
  struct Prefilled {
    GenerationRequest prompt;
    uint64_t hash = 0;
    std::shared_ptr<KvCache> cache;  // that step's prompt cache
    int64_t row = 0, length = 0, delta = 0;
    at::Tensor hidden;  // [hidden] of the prompt's last token
  };
  std::vector<Prefilled> prefilled;
  std::unique_ptr<DecodeGraphs> graphs;  // options.cuda_graphs
  int64_t next_id = 0;
  int64_t tokens_in_flight = 0;
  GenerationStats stats;
};

absl::StatusOr<std::vector<std::pair<int64_t, GenerationResult>>> GenerationEngine::Impl::Step() {
  torch::NoGradGuard no_grad;
  const ModelConfig& config = model.config();
  // 1. Admission: waiting requests join while the limits allow; equal prompts form one group.
  struct Group {
    int64_t first;                 // the request whose prompt is prefilled
    std::vector<int64_t> members;  // requests sharing it
  };
  std::vector<Group> groups;
  std::vector<std::pair<int64_t, int64_t>> reused;  // (request, index into prefilled)
  int64_t admitted = 0, prefill_tokens = 0;
  const int64_t running_rows = static_cast<int64_t>(row_id.size());
  while (!waiting.empty()) {
    const int64_t id = waiting.front();
    Request& r = requests.at(id);
    if (r.cancelled) {
      waiting.pop_front();
      requests.erase(id);
      continue;
    }
    const bool first = running_rows + admitted == 0;
    if (!first && options.max_batch_rows > 0 && running_rows + admitted >= options.max_batch_rows) break;
    if (!first && options.max_batch_tokens > 0 && tokens_in_flight + r.budget > options.max_batch_tokens) break;
    Group* group = nullptr;
    int64_t earlier = -1;  // a prompt prefilled at an earlier step that this request can copy
    if (options.share_prefill) {
      for (Group& g : groups) {
        const Request& first_of_group = requests.at(g.first);
        if (first_of_group.hash == r.hash && SamePrompt(first_of_group.request, r.request)) {
          group = &g;
          break;
        }
      }
      for (size_t e = 0; group == nullptr && e < prefilled.size(); ++e) {
        if (prefilled[e].hash == r.hash && SamePrompt(prefilled[e].prompt, r.request)) earlier = static_cast<int64_t>(e);
      }
    }
    if (earlier >= 0) {
      reused.emplace_back(id, earlier);
    } else if (group == nullptr) {
      const auto n = static_cast<int64_t>(r.request.prompt_ids.size());
      if (admitted > 0 && options.max_prefill_tokens > 0 && prefill_tokens + n > options.max_prefill_tokens) break;
      prefill_tokens += n;
      groups.push_back({id, {}});
      group = &groups.back();
    }
    if (earlier < 0) group->members.push_back(id);
    ++admitted;
    tokens_in_flight += r.budget;
    waiting.pop_front();
  }

  std::vector<at::Tensor> new_hidden;  // per admitted row, in the order the rows are added
  if (!groups.empty()) {
    // One prefill forward for the distinct prompts, right-padded (no padding: no mask at all).
    const auto G = static_cast<int64_t>(groups.size());
    int64_t width = 0, capacity = 0;
    bool same_length = true;
    for (const Group& g : groups) {
      const auto n = static_cast<int64_t>(requests.at(g.first).request.prompt_ids.size());
      same_length = same_length && (width == 0 || n == width);
      width = std::max(width, n);
      for (int64_t id : g.members) capacity = std::max(capacity, requests.at(id).budget);
    }
    for (const auto& [id, e] : reused) capacity = std::max(capacity, requests.at(id).budget);
    at::Tensor ids = torch::full({G, width}, options.pad_token_id, torch::kLong);
    at::Tensor mask = torch::zeros({G, width}, torch::kLong);
    std::vector<at::Tensor> pixels, grids;
    std::vector<int64_t> lengths(G);
    for (int64_t g = 0; g < G; ++g) {
      const GenerationRequest& r = requests.at(groups[g].first).request;
      lengths[g] = static_cast<int64_t>(r.prompt_ids.size());
      ids[g].narrow(0, 0, lengths[g]).copy_(torch::tensor(r.prompt_ids, torch::kLong));
      mask[g].narrow(0, 0, lengths[g]).fill_(1);
      if (HasPixels(r)) {
        pixels.push_back(r.pixel_values.to(torch::kCPU, torch::kFloat));
        grids.push_back(r.image_grid_thw.to(torch::kCPU, torch::kLong).view({-1, 3}));
      }
    }
    ForwardInput prefill;
    prefill.input_ids = ids.to(device);
    if (!same_length) prefill.attention_mask = mask.to(device);
    if (!pixels.empty()) {
      prefill.pixel_values = torch::cat(pixels, 0);
      prefill.image_grid_thw = torch::cat(grids, 0);
    }
    auto prompt_cache = std::make_shared<KvCache>(config, G, width, dtype, device);
    prefill.cache = prompt_cache.get();
    auto out = model.Forward(prefill);
    if (!out.ok()) return out.status();
    stats.prefill_rows += G;
    for (int64_t n : lengths) stats.prefill_tokens += n;
    at::Tensor last = torch::tensor(lengths, torch::kLong).to(device) - 1;
    at::Tensor prompt_hidden = out->hidden.index({torch::arange(G, torch::dtype(torch::kLong).device(device)), last});
    // Decode positions continue from each prompt's own length: delta + (width - length).
    at::Tensor deltas_cpu = out->rope_deltas.to(torch::kCPU, torch::kLong).contiguous();
    std::vector<int64_t> deltas(G);
    for (int64_t g = 0; g < G; ++g) deltas[g] = deltas_cpu.data_ptr<int64_t>()[g] + width - lengths[g];

    Reserve(running_rows + admitted, capacity);
    std::vector<int64_t> source_group;  // per new row
    for (int64_t g = 0; g < G; ++g) {
      for (int64_t id : groups[g].members) {
        source_group.push_back(g);
        row_id.push_back(id);
      }
    }
    const auto from_groups = static_cast<int64_t>(source_group.size());
    cache->set_active_rows(running_rows + from_groups);
    if (same_length) {
      std::vector<int64_t> row_deltas;
      for (int64_t g : source_group) row_deltas.push_back(deltas[g]);
      cache->LoadRows(running_rows, *prompt_cache, torch::tensor(source_group, torch::kLong).to(device), width,
                      row_deltas);
    } else {
      for (int64_t j = 0; j < from_groups; ++j) {
        const int64_t g = source_group[j];
        cache->LoadRow(running_rows + j, *prompt_cache, g, 0, lengths[g], deltas[g]);
      }
    }
    new_hidden.push_back(from_groups == G ? prompt_hidden
                                          : prompt_hidden.index_select(
                                                0, torch::tensor(source_group, torch::kLong).to(device)));
    // Kept for the samples of these prompts that could not join yet (see below).
    for (int64_t g = 0; g < G; ++g) {
      Prefilled p;
      p.prompt = requests.at(groups[g].first).request;
      p.hash = requests.at(groups[g].first).hash;
      p.cache = prompt_cache;
      p.row = g;
      p.length = lengths[g];
      p.delta = deltas[g];
      p.hidden = prompt_hidden[g];
      prefilled.push_back(std::move(p));
    }
  }
  if (!reused.empty()) {
    // Requests whose prompt was prefilled at an earlier step: their rows are copies of it.
    int64_t capacity = 0;
    for (const auto& [id, e] : reused) capacity = std::max(capacity, requests.at(id).budget);
    Reserve(static_cast<int64_t>(row_id.size() + reused.size()), capacity);
    std::vector<at::Tensor> rows;
    for (const auto& [id, e] : reused) {
      const Prefilled& p = prefilled[static_cast<size_t>(e)];
      const auto slot = static_cast<int64_t>(row_id.size());
      cache->set_active_rows(slot + 1);
      cache->LoadRow(slot, *p.cache, p.row, 0, p.length, p.delta);
      row_id.push_back(id);
      rows.push_back(p.hidden);
    }
    new_hidden.push_back(torch::stack(rows));
  }
  if (!new_hidden.empty()) {
    at::Tensor joined = new_hidden.size() == 1 ? new_hidden[0] : torch::cat(new_hidden, 0);
    hidden = running_rows == 0 ? joined : torch::cat({hidden, joined}, 0);
  }
  // A prefilled prompt is kept while a waiting request has it (the rest of its samples), and the most
  // recent ones also while their prompt caches take at most a quarter of the slot cache's memory (a
  // caller that queues its samples behind running rows, as r1r-serve's batcher does, finds them there).
  if (!prefilled.empty()) {
    std::vector<Prefilled> kept;
    std::vector<const KvCache*> counted;
    int64_t kept_bytes = 0;
    const int64_t budget = cache ? cache->bytes() / 4 : 0;
    for (auto it = prefilled.rbegin(); it != prefilled.rend(); ++it) {  // newest first
      Prefilled& p = *it;
      bool wanted = false;
      for (int64_t id : waiting) {
        const Request& r = requests.at(id);
        if (!r.cancelled && r.hash == p.hash && SamePrompt(p.prompt, r.request)) {
          wanted = true;
          break;
        }
      }
      const bool new_cache = std::find(counted.begin(), counted.end(), p.cache.get()) == counted.end();
      const int64_t extra = new_cache ? p.cache->bytes() : 0;
      if (!wanted && kept_bytes + extra > budget) continue;
      if (new_cache) counted.push_back(p.cache.get());
      kept_bytes += extra;
      kept.push_back(std::move(p));
    }
    std::reverse(kept.begin(), kept.end());
    prefilled = std::move(kept);
  }

  std::vector<std::pair<int64_t, GenerationResult>> finished;
  const auto rows = static_cast<int64_t>(row_id.size());
  if (rows == 0) return finished;
  stats.max_active_rows = std::max(stats.max_active_rows, rows);

  // 2. One token for every running row.
  std::vector<RowToSample> to_sample;
  to_sample.reserve(rows);
  for (int64_t id : row_id) {
    Request& r = requests.at(id);
    to_sample.push_back({&r.request.sampling, &r.request.prompt_ids, &r.result.token_ids, NextUniform(r.rng)});
  }
  std::vector<SampledToken> sampled = SampleRows(model.ComputeLogits(hidden), to_sample, options.device_sampling);
  std::vector<bool> alive(rows, true);
  for (int64_t i = 0; i < rows; ++i) {
    Request& r = requests.at(row_id[i]);
    const SamplingParams& s = r.request.sampling;
    GenerationResult& res = r.result;
    res.token_ids.push_back(sampled[i].token);
    res.logprobs.push_back(sampled[i].logprob);
    res.sampling_logprobs.push_back(sampled[i].sampling_logprob);
    if (IsStop(s, sampled[i].token)) {
      res.finish_reason = FinishReason::kStop;
      alive[i] = false;
    } else if (static_cast<int64_t>(res.token_ids.size()) >= s.max_new_tokens) {
      res.finish_reason = FinishReason::kLength;
      alive[i] = false;
    }
    if (r.cancelled) alive[i] = false;
    if (!alive[i]) {
      tokens_in_flight -= r.budget;
      if (!r.cancelled) finished.emplace_back(row_id[i], std::move(res));
      requests.erase(row_id[i]);
    }
  }

  // 3. Finished rows leave: the last running rows move into their slots (no other row is copied).
  std::vector<int64_t> order;  // new row p continues old row order[p]
  for (int64_t i = 0; i < rows; ++i) {
    if (alive[i]) order.push_back(i);
  }
  const auto n_alive = static_cast<int64_t>(order.size());
  {
    std::vector<int64_t> holes, movers;
    for (int64_t i = 0; i < n_alive; ++i) {
      if (!alive[i]) holes.push_back(i);
    }
    for (int64_t i = n_alive; i < rows; ++i) {
      if (alive[i]) movers.push_back(i);
    }
    order.resize(n_alive);
    for (int64_t i = 0; i < n_alive; ++i) order[i] = i;
    for (size_t j = 0; j < holes.size(); ++j) {
      cache->MoveRow(movers[j], holes[j]);
      order[holes[j]] = movers[j];
    }
  }
  cache->set_active_rows(n_alive);
  std::vector<int64_t> next_ids(n_alive), next_rows(n_alive);
  for (int64_t p = 0; p < n_alive; ++p) {
    next_ids[p] = sampled[order[p]].token;
    next_rows[p] = row_id[order[p]];
  }
  row_id = std::move(next_rows);
  if (n_alive == 0) {
    hidden = at::Tensor();
    return finished;
  }

  // 4. One decode step for the rows that go on.
  if (options.cuda_graphs) {
    if (graphs == nullptr) graphs = std::make_unique<DecodeGraphs>(model, options.cuda_graph_span_step);
    hidden = graphs->Step(*cache, next_ids);
    stats.decode_graph_shapes = graphs->shapes();
    stats.decode_graphs_captured = graphs->captured();
    stats.decode_graph_capture_seconds = graphs->capture_seconds();
  } else {
    ForwardInput next;
    next.input_ids = torch::tensor(next_ids, torch::kLong).view({n_alive, 1}).to(device);
    next.cache = cache.get();
    auto out = model.Forward(next);
    if (!out.ok()) return out.status();
    hidden = out->hidden.select(1, 0);
  }
  ++stats.decode_steps;
  stats.decode_rows += n_alive;
  return finished;
}

GenerationEngine::GenerationEngine(Qwen2_5_VL& model, const GenerateOptions& options)
    : impl_(std::make_unique<Impl>(model, options)) {}
GenerationEngine::~GenerationEngine() = default;

absl::StatusOr<int64_t> GenerationEngine::Add(GenerationRequest request) {
  const int64_t id = impl_->next_id;
  if (absl::Status s = ValidateRequest(static_cast<size_t>(id), request, impl_->model.config()); !s.ok()) return s;
  ++impl_->next_id;
  Impl::Request r;
  r.budget = static_cast<int64_t>(request.prompt_ids.size()) + request.sampling.max_new_tokens;
  r.rng.seed(request.sampling.seed);
  r.hash = PromptHash(request);
  r.request = std::move(request);
  impl_->requests.emplace(id, std::move(r));
  impl_->waiting.push_back(id);
  return id;
}

void GenerationEngine::Reserve(int64_t rows, int64_t capacity) { impl_->Reserve(rows, capacity); }

void GenerationEngine::Cancel(int64_t id) {
  auto it = impl_->requests.find(id);
  if (it == impl_->requests.end()) return;
  auto queued = std::find(impl_->waiting.begin(), impl_->waiting.end(), id);
  if (queued != impl_->waiting.end()) {
    impl_->waiting.erase(queued);
    impl_->requests.erase(it);
  } else {
    it->second.cancelled = true;  // a running row leaves at the next step
  }
}

absl::StatusOr<std::vector<std::pair<int64_t, GenerationResult>>> GenerationEngine::Step() {
  absl::StatusOr<std::vector<std::pair<int64_t, GenerationResult>>> out;
  try {
    out = impl_->Step();
  } catch (const c10::Error& e) {
    out = absl::InternalError(absl::StrCat("generate: ", e.what_without_backtrace()));
  }
  if (!out.ok()) impl_->Reset();  // every request in flight fails with the step
  return out;
}

bool GenerationEngine::idle() const { return impl_->requests.empty(); }
int64_t GenerationEngine::running() const { return static_cast<int64_t>(impl_->row_id.size()); }
int64_t GenerationEngine::waiting() const { return static_cast<int64_t>(impl_->waiting.size()); }
const GenerationStats& GenerationEngine::stats() const { return impl_->stats; }

absl::StatusOr<std::vector<GenerationResult>> Generate(Qwen2_5_VL& model, const std::vector<GenerationRequest>& requests,
                                                       const GenerateOptions& options) {
  if (requests.empty()) return std::vector<GenerationResult>{};
  absl::Status valid = ValidateRequests(requests, model.config());
  if (!valid.ok()) return valid;
  if (!options.use_kv_cache || !options.continuous_batching) {
    try {
      return GenerateStatic(model, requests, options);
    } catch (const c10::Error& e) {
      return absl::InternalError(absl::StrCat("generate: ", e.what_without_backtrace()));
    }
  }
  GenerationEngine engine(model, options);
  int64_t rows = static_cast<int64_t>(requests.size()), capacity = 0;
  if (options.max_batch_rows > 0) rows = std::min(rows, options.max_batch_rows);
  for (const GenerationRequest& r : requests) {
    capacity = std::max<int64_t>(capacity, static_cast<int64_t>(r.prompt_ids.size()) + r.sampling.max_new_tokens);
  }
  try {
    engine.Reserve(rows, capacity);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("generate: cannot allocate the KV cache: ", e.what_without_backtrace()));
  }
  for (const GenerationRequest& r : requests) {
    auto id = engine.Add(r);
    if (!id.ok()) return id.status();
  }
  std::vector<GenerationResult> results(requests.size());
  while (!engine.idle()) {
    if (options.cancelled && options.cancelled()) return absl::CancelledError("generation cancelled");
    auto finished = engine.Step();
    if (!finished.ok()) return finished.status();
    for (auto& [id, result] : *finished) {
      if (options.on_result) options.on_result(static_cast<size_t>(id), result);
      results[static_cast<size_t>(id)] = std::move(result);
    }
  }
  if (options.stats != nullptr) *options.stats = engine.stats();
  return results;
}

}  // namespace r1r::model
