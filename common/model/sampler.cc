#include "common/model/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>

#include <torch/torch.h>

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

// Rows without top-k/top-p: inverse CDF over the vocabulary in id order, in two levels so that no
// pass over the vocabulary needs a sort or float64 (slow on CPUs): block masses (float32 sums of 128
// probabilities), their running sum in float64 picks the block, the block's own running sum in float64
// picks the token. `e` [m, V] holds unnormalised probabilities exp(logit / T - max); returns the
// picked ids [m] and the float64 total mass [m].
std::pair<at::Tensor, at::Tensor> InverseCdfInIdOrder(const at::Tensor& e, const at::Tensor& u) {
  const int64_t m = e.size(0), V = e.size(1), block = 128, blocks = (V + block - 1) / block;
  at::Tensor padded = blocks * block == V ? e : torch::cat({e, torch::zeros({m, blocks * block - V}, e.options())}, 1);
  at::Tensor cells = padded.view({m, blocks, block});
  at::Tensor block_cdf = cells.sum(-1).to(torch::kDouble).cumsum(-1);  // [m, blocks]
  at::Tensor total = block_cdf.select(1, blocks - 1);
  at::Tensor target = (u * total).unsqueeze(1);
  at::Tensor b = torch::searchsorted(block_cdf, target).clamp_max(blocks - 1);  // [m, 1]
  at::Tensor before = torch::where(b.gt(0), block_cdf.gather(1, (b - 1).clamp_min(0)), torch::zeros_like(target));
  at::Tensor inner = cells.gather(1, b.unsqueeze(2).expand({m, 1, block})).squeeze(1).to(torch::kDouble);  // [m, block]
  at::Tensor inner_cdf = inner.cumsum(-1) + before;
  at::Tensor j = torch::searchsorted(inner_cdf, target).clamp_max(block - 1);  // [m, 1]
  // Float32 block sums and float64 running sums can disagree in the last bits: never land on a
  // token without mass (padding, a suppressed id), take the last one with mass at or before j.
  at::Tensor slots = torch::arange(block, torch::dtype(torch::kLong).device(e.device())).unsqueeze(0);
  at::Tensor candidates = torch::where(inner.gt(0).logical_and(slots.le(j)), slots, torch::full_like(slots, -1));
  at::Tensor last_with_mass = std::get<0>(candidates.max(-1, /*keepdim=*/true));
  j = torch::where(last_with_mass.ge(0), last_with_mass, j);
  at::Tensor pick = (b * block + j).squeeze(1).clamp_max(V - 1);
  return {pick, total};
}

std::vector<SampledToken> SampleOnDevice(const at::Tensor& logits_in, const std::vector<const SamplingParams*>& params,
                                         const std::vector<double>& uniforms) {
  const int64_t n = logits_in.size(0), V = logits_in.size(1);
  const at::Device device = logits_in.device();
  const auto on_device = [&](at::ScalarType t) { return torch::TensorOptions().dtype(t).device(device); };
  at::Tensor logits = logits_in.to(torch::kFloat);
  std::vector<float> temperatures(n);
  std::vector<int64_t> plain, filtered;  // sampled rows without / with top-k or top-p
  for (int64_t i = 0; i < n; ++i) {
    const SamplingParams& p = *params[i];
    const bool greedy = p.temperature <= 0.0;
    temperatures[i] = greedy ? 1.0f : static_cast<float>(p.temperature);
    if (greedy) continue;
    (p.top_k > 0 || p.top_p < 1.0 ? filtered : plain).push_back(i);
  }
  const bool all_one = std::all_of(temperatures.begin(), temperatures.end(), [](float t) { return t == 1.0f; });
  at::Tensor scaled = all_one ? logits : logits / torch::tensor(temperatures, torch::kFloat).to(device).unsqueeze(1);
  // log softmax without materialising it: lse = max + log(sum exp(x - max)).
  at::Tensor row_max = std::get<0>(scaled.max(-1, /*keepdim=*/true));
  at::Tensor e = (scaled - row_max).exp_();  // unnormalised probabilities, [n, V]
  at::Tensor tokens = logits.argmax(-1);  // greedy rows keep it
  at::Tensor sampling_logp = torch::zeros({n}, on_device(torch::kDouble));
  at::Tensor u_all = torch::tensor(uniforms, torch::kDouble).to(device);
  auto subset = [&](const std::vector<int64_t>& rows) { return torch::tensor(rows, torch::kLong).to(device); };
  if (!plain.empty()) {
    at::Tensor idx = subset(plain);
    const bool all = static_cast<int64_t>(plain.size()) == n;
    at::Tensor rows_e = all ? e : e.index_select(0, idx);
    auto [pick, total] = InverseCdfInIdOrder(rows_e, all ? u_all : u_all.index_select(0, idx));
    at::Tensor p = rows_e.gather(1, pick.unsqueeze(1)).squeeze(1).to(torch::kDouble);
    tokens.index_copy_(0, idx, pick);
    sampling_logp.index_copy_(0, idx, (p / total).log());
  }
  if (!filtered.empty()) {
    // As SampleToken: descending order, top-k, then top-p on the unrenormalised mass, over the
    // top candidates only (topk, not a sort of the vocabulary). Top-p needs the candidates to reach
    // its mass; a row whose 1024 best tokens do not is sorted in full.
    at::Tensor idx = subset(filtered);
    std::vector<int64_t> ks;
    std::vector<double> ps;
    int64_t candidates = 1;
    for (int64_t i : filtered) {
      const int64_t k = params[i]->top_k > 0 ? std::min<int64_t>(V, params[i]->top_k) : V;
      ks.push_back(k);
      ps.push_back(params[i]->top_p < 1.0 ? params[i]->top_p : 2.0);
      candidates = std::max(candidates, params[i]->top_p < 1.0 ? std::min<int64_t>(k, 1024) : k);
    }
    at::Tensor lp = torch::log_softmax(scaled.index_select(0, idx), -1);
    at::Tensor k = torch::tensor(ks, torch::kLong).to(device).unsqueeze(1);
    at::Tensor top_p = torch::tensor(ps, torch::kDouble).to(device).unsqueeze(1);
    at::Tensor u = u_all.index_select(0, idx).unsqueeze(1);
    for (int attempt = 0; attempt < 2; ++attempt) {
      at::Tensor sorted_lp, sorted_ids;
      if (candidates >= V) {
        // Row by row: one sort of a [rows, V] tensor is slower than rows sorts of [V] on CPUs.
        std::vector<at::Tensor> values, ids;
        for (int64_t r = 0; r < lp.size(0); ++r) {
          auto [v, i] = torch::sort(lp[r], /*stable=*/true, /*dim=*/-1, /*descending=*/true);
          values.push_back(v);
          ids.push_back(i);
        }
        sorted_lp = torch::stack(values);
        sorted_ids = torch::stack(ids);
      } else {
        std::tie(sorted_lp, sorted_ids) = torch::topk(lp, candidates, -1, /*largest=*/true, /*sorted=*/true);
      }
      at::Tensor probs = sorted_lp.exp().to(torch::kDouble);  // [m, candidates]
      at::Tensor cdf = probs.cumsum(-1);
      at::Tensor mass_before = (cdf - probs).contiguous();
      // Kept: the first min(k, #(mass before < top_p)) tokens, at least one.
      at::Tensor within = torch::min(torch::searchsorted(mass_before, top_p), k.clamp_max(candidates));
      if (candidates < V) {
        // A row is complete when its kept set ends inside the candidates.
        const bool complete = within.lt(candidates).logical_or(k.le(candidates)).all().item<bool>();
        if (!complete) {
          candidates = V;
          continue;
        }
      }
      at::Tensor keep = within.clamp_min(1);  // [m, 1]
      at::Tensor total = cdf.gather(1, keep - 1);
      at::Tensor pick = torch::min(torch::searchsorted(cdf.contiguous(), u * total), keep - 1);
      at::Tensor p = probs.gather(1, pick);
      tokens.index_copy_(0, idx, sorted_ids.gather(1, pick).squeeze(1));
      sampling_logp.index_copy_(0, idx, (p / total).log().squeeze(1));
      break;
    }
  }
  // log softmax(logits / T)[token] = x - max - log(sum exp(x - max)), sums in float64.
  at::Tensor sums = e.sum(-1, /*keepdim=*/true).to(torch::kDouble);
  at::Tensor logprob =
      scaled.gather(1, tokens.unsqueeze(1)).to(torch::kDouble) - row_max.to(torch::kDouble) - sums.log();
  // One transfer to the host: ids (exact in double), log-probs, sampling log-probs.
  at::Tensor packed =
      torch::stack({tokens.to(torch::kDouble), logprob.squeeze(1), sampling_logp}).to(torch::kCPU).contiguous();
  const double* d = packed.data_ptr<double>();
  std::vector<SampledToken> out(n);
  for (int64_t i = 0; i < n; ++i) {
    out[i] = {static_cast<int64_t>(d[i]), static_cast<float>(d[n + i]), static_cast<float>(d[2 * n + i])};
  }
  return out;
}

}  // namespace

std::vector<SampledToken> SampleTokens(const at::Tensor& logits, const std::vector<SamplingParams>& params,
                                       const std::vector<double>& uniforms) {
  TORCH_CHECK(logits.dim() == 2 && static_cast<size_t>(logits.size(0)) == params.size() &&
                  params.size() == uniforms.size(),
              "SampleTokens: logits [rows, vocab] with one params and one uniform per row");
  torch::NoGradGuard no_grad;
  std::vector<const SamplingParams*> ptrs;
  for (const SamplingParams& p : params) ptrs.push_back(&p);
  return SampleOnDevice(logits, ptrs, uniforms);
}

std::vector<SampledToken> SampleRows(at::Tensor logits, const std::vector<RowToSample>& rows, bool on_device) {
  const int64_t V = logits.size(1);
  std::vector<int64_t> suppress_rows, suppress_ids;
  for (size_t i = 0; i < rows.size(); ++i) {
    for (int64_t id : rows[i].params->suppress_token_ids) {
      if (id >= 0 && id < V) {
        suppress_rows.push_back(static_cast<int64_t>(i));
        suppress_ids.push_back(id);
      }
    }
  }
  if (!suppress_rows.empty()) {
    logits.index_put_({torch::tensor(suppress_rows, torch::kLong).to(logits.device()),
                       torch::tensor(suppress_ids, torch::kLong).to(logits.device())},
                      torch::tensor(-std::numeric_limits<float>::infinity()).to(logits.device()));
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    const SamplingParams& s = *rows[i].params;
    if (s.repetition_penalty == 1.0) continue;
    std::vector<int64_t> seen = *rows[i].prompt;
    seen.insert(seen.end(), rows[i].generated->begin(), rows[i].generated->end());
    at::Tensor row = logits[static_cast<int64_t>(i)];
    row.copy_(ApplyRepetitionPenalty(row.clone(), seen, s.repetition_penalty));
  }
  std::vector<SampledToken> out;
  if (on_device) {
    std::vector<const SamplingParams*> params;
    std::vector<double> uniforms;
    for (const RowToSample& r : rows) {
      params.push_back(r.params);
      uniforms.push_back(r.uniform);
    }
    return SampleOnDevice(logits, params, uniforms);
  }
  at::Tensor host = logits.to(torch::kCPU, torch::kFloat);
  for (size_t i = 0; i < rows.size(); ++i) {
    out.push_back(SampleToken(host[static_cast<int64_t>(i)], *rows[i].params, rows[i].uniform));
  }
  return out;
}

}  // namespace r1r::model
