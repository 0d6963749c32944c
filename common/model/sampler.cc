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

// Candidates for a top-k/top-p row: the ids whose log-prob is at least `cutoff`, in the reference's
// order (descending log-prob, ties by ascending id). Such a set is a prefix of SampleToken's sorted
// row with every tie group whole, so when the kept set fits inside it, it is the reference's kept set.
std::pair<at::Tensor, at::Tensor> SortedCandidates(const at::Tensor& logp, double cutoff) {
  at::Tensor ids = std::isinf(cutoff) && cutoff < 0 ? at::Tensor() : torch::nonzero(logp.ge(cutoff)).squeeze(1);
  at::Tensor values = ids.defined() ? logp.index_select(0, ids) : logp;  // ids ascending: a stable sort keeps them so
  auto [sorted, order] = torch::sort(values, /*stable=*/true, /*dim=*/0, /*descending=*/true);
  return {sorted, ids.defined() ? ids.index_select(0, order) : order};
}

// One top-k/top-p row as SampleToken samples it, without sorting the vocabulary: a cutoff on the
// log-probs that keeps the top-k and reaches the top-p mass (a bisection with one threshold-and-sum
// pass per step), then a sort of the tokens above it only. The kept set is then decided exactly as
// the reference does (float64 running sum over the same float32 probabilities in the same order);
// if it does not end inside the candidates (float32 sums off by a rounding), the row is sorted in
// full. Returns the token [1] and its log-prob under the kept, renormalised distribution [1].
std::pair<at::Tensor, at::Tensor> SampleFilteredRow(const at::Tensor& logits, const SamplingParams& s, double uniform,
                                                    at::Tensor* behaviour_logprob) {
  const int64_t V = logits.size(0);
  // The same expression on the same row as SampleToken: the same log-probs and probabilities, bit
  // for bit (row by row also because on a CPU a row stays in cache through every pass: log_softmax
  // over [32, 152k] at once measured 20x slower than 32 rows one at a time).
  at::Tensor logp = torch::log_softmax(logits / s.temperature, 0);
  at::Tensor probs = logp.exp();
  const int64_t k = s.top_k > 0 ? std::min(V, s.top_k) : V;
  const bool top_p = s.top_p < 1.0;
  double cutoff = -std::numeric_limits<double>::infinity();
  if (k < V) cutoff = std::get<0>(torch::kthvalue(logp, V - k + 1)).item<double>();  // the k-th largest
  if (top_p) {
    // Every token below (1 - top_p) / V together holds less than 1 - top_p, so the tokens above it
    // reach top_p: the bisection starts there (or at the top-k cutoff, if higher) and stops once the
    // interval is narrower than a factor e^0.125 in probability. Slack for float32 sums.
    double lo = std::max(cutoff, std::log((1.0 - s.top_p) / static_cast<double>(V)));
    double hi = logp.max().item<double>();
    for (int step = 0; step < 10 && hi - lo > 0.125; ++step) {
      const double mid = 0.5 * (lo + hi);
      const double mass = torch::threshold(probs, std::exp(mid), 0.0).sum().item<double>();
      (mass >= s.top_p + 1e-5 ? lo : hi) = mid;
    }
    cutoff = lo;
  }
  for (;;) {
    auto [sorted_logp, sorted_ids] = SortedCandidates(logp, cutoff);
    at::Tensor p = probs.index_select(0, sorted_ids).to(torch::kDouble);
    const int64_t candidates = p.size(0);
    int64_t keep = std::min(k, candidates);
    if (top_p) {
      // As SampleToken: keep tokens while the mass before them is below top_p (at least one).
      at::Tensor cdf = p.narrow(0, 0, keep).cumsum(0);
      const int64_t within = (cdf - p.narrow(0, 0, keep)).lt(s.top_p).sum().item<int64_t>();
      // The running mass only grows, so the kept set ends inside the candidates if a candidate
      // already has top_p before it, or top-k ends it there. If every candidate is kept, it ends
      // there when the next token in the reference's order (the largest left out) has top_p before
      // it, in the reference's float64 arithmetic. Otherwise the search fell short (float32 sums):
      // the row is sorted in full.
      if (within == candidates && k > candidates) {
        const double next = torch::where(logp.lt(cutoff), probs, torch::zeros({}, probs.options())).max().item<double>();
        const double last = cdf[candidates - 1].item<double>();
        if (!((last + next) - next >= s.top_p)) {
          cutoff = -std::numeric_limits<double>::infinity();
          continue;
        }
      }
      keep = std::max<int64_t>(1, within);
    }
    at::Tensor kept = p.narrow(0, 0, keep);
    at::Tensor total = kept.sum(0, /*keepdim=*/true);  // as SampleToken: a sum, not the last running sum
    at::Tensor pick = torch::searchsorted(kept.cumsum(0), total * uniform).clamp_max(keep - 1);
    at::Tensor token = sorted_ids.index_select(0, pick);
    *behaviour_logprob = logp.index_select(0, token);
    return {token, (kept.index_select(0, pick) / total).log()};
  }
}

std::vector<SampledToken> SampleOnDevice(const at::Tensor& logits_in, const std::vector<const SamplingParams*>& params,
                                         const std::vector<double>& uniforms) {
  const int64_t n = logits_in.size(0);
  const at::Device device = logits_in.device();
  const auto on_device = [&](at::ScalarType t) { return torch::TensorOptions().dtype(t).device(device); };
  at::Tensor logits = logits_in.to(torch::kFloat);
  std::vector<int64_t> greedy, plain, filtered;  // rows: argmax / inverse CDF / top-k or top-p
  for (int64_t i = 0; i < n; ++i) {
    const SamplingParams& p = *params[i];
    if (p.temperature <= 0.0) {
      greedy.push_back(i);
    } else {
      (p.top_k > 0 || p.top_p < 1.0 ? filtered : plain).push_back(i);
    }
  }
  auto subset = [&](const std::vector<int64_t>& rows) { return torch::tensor(rows, torch::kLong).to(device); };
  auto rows_of = [&](const std::vector<int64_t>& rows) {
    return static_cast<int64_t>(rows.size()) == n ? logits : logits.index_select(0, subset(rows));
  };
  at::Tensor tokens = torch::empty({n}, on_device(torch::kLong));
  at::Tensor logprob = torch::empty({n}, on_device(torch::kDouble));
  at::Tensor sampling_logp = torch::zeros({n}, on_device(torch::kDouble));
  if (!greedy.empty()) {
    // The argmax and the maximum in one pass (max keeps the first index of a tie, as argmax does),
    // then log softmax(x)[argmax] = -log(sum exp(x - max)) with the log in float64.
    at::Tensor x = rows_of(greedy);
    auto [row_max, argmax] = x.max(-1, /*keepdim=*/true);
    at::Tensor chosen = -(x - row_max).exp_().sum(-1).to(torch::kDouble).log();
    argmax = argmax.squeeze(1);
    at::Tensor idx = subset(greedy);
    tokens.index_copy_(0, idx, argmax);
    logprob.index_copy_(0, idx, chosen);
  }
  if (!plain.empty()) {
    at::Tensor x = rows_of(plain);
    std::vector<float> temperatures;
    for (int64_t i : plain) temperatures.push_back(static_cast<float>(params[i]->temperature));
    const bool all_one = std::all_of(temperatures.begin(), temperatures.end(), [](float t) { return t == 1.0f; });
    at::Tensor scaled = all_one ? x : x / torch::tensor(temperatures, torch::kFloat).to(device).unsqueeze(1);
    at::Tensor row_max = scaled.amax(-1, /*keepdim=*/true);
    at::Tensor e = (scaled - row_max).exp_();  // unnormalised probabilities, [rows, V]
    at::Tensor idx = subset(plain);
    at::Tensor u = torch::tensor(uniforms, torch::kDouble).to(device).index_select(0, idx);
    auto [pick, total] = InverseCdfInIdOrder(e, u);
    at::Tensor p = e.gather(1, pick.unsqueeze(1)).squeeze(1).to(torch::kDouble);
    // log softmax(logits / T)[token] = x - max - log(sum exp(x - max)), sums in float64.
    at::Tensor sums = e.sum(-1, /*keepdim=*/true).to(torch::kDouble);
    at::Tensor chosen = scaled.gather(1, pick.unsqueeze(1)).to(torch::kDouble) - row_max.to(torch::kDouble) - sums.log();
    tokens.index_copy_(0, idx, pick);
    logprob.index_copy_(0, idx, chosen.squeeze(1));
    sampling_logp.index_copy_(0, idx, (p / total).log());
  }
  if (!filtered.empty()) {
    std::vector<at::Tensor> picked, picked_logp, behaviour;
    for (int64_t i : filtered) {
      at::Tensor b;
      auto [token, logp] = SampleFilteredRow(logits[i], *params[i], uniforms[i], &b);
      picked.push_back(token);
      picked_logp.push_back(logp);
      behaviour.push_back(b.to(torch::kDouble));
    }
    at::Tensor idx = subset(filtered);
    tokens.index_copy_(0, idx, torch::cat(picked));
    sampling_logp.index_copy_(0, idx, torch::cat(picked_logp));
    logprob.index_copy_(0, idx, torch::cat(behaviour));
  }
  // One transfer to the host: ids (exact in double), log-probs, sampling log-probs.
  at::Tensor packed = torch::stack({tokens.to(torch::kDouble), logprob, sampling_logp}).to(torch::kCPU).contiguous();
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
