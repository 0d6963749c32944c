#include "common/train/trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <numeric>

#include <absl/strings/str_cat.h>

#include "common/dist/process_group.h"
#include "common/model/logprobs.h"
#include "common/train/optimizer.h"
#include "common/rl/advantage.h"
#include "common/rl/loss.h"

namespace r1r::train {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// Pads a [b, r] block to [b, width] with zeros on the right.
at::Tensor PadColumns(const at::Tensor& t, int64_t width) {
  if (t.size(1) == width) return t;
  return torch::constant_pad_nd(t, {0, width - t.size(1)}, 0);
}

// Padded tokens of an item as it sits in a batch: prompt + response.
int64_t TokensOf(const SftItem& it) { return static_cast<int64_t>(it.prompt.ids.size() + it.target_ids.size()); }
int64_t TokensOf(const RlItem& it) { return static_cast<int64_t>(it.prompt.ids.size() + it.response_ids.size()); }

// Consecutive slices of `order` with at most `micro` sequences and, when token_budget > 0, at most
// that many padded tokens (rows x widest prompt + widest response); a single longer sequence still
// gets its own micro-batch. Gradients accumulate over them, so the step does not depend on the split.
template <typename Item>
std::vector<std::vector<size_t>> MicroBatches(const std::vector<Item>& items, const std::vector<size_t>& order,
                                              int64_t micro, int64_t token_budget) {
  std::vector<std::vector<size_t>> out;
  std::vector<size_t> current;
  int64_t widest = 0;
  for (size_t i : order) {
    const int64_t tokens = TokensOf(items[i]);
    const int64_t padded = static_cast<int64_t>(current.size() + 1) * std::max(widest, tokens);
    const bool full = static_cast<int64_t>(current.size()) >= micro || (token_budget > 0 && padded > token_budget);
    if (!current.empty() && full) {
      out.push_back(std::move(current));
      current.clear();
      widest = 0;
    }
    current.push_back(i);
    widest = std::max(widest, tokens);
  }
  if (!current.empty()) out.push_back(std::move(current));
  return out;
}

// Packed SFT rows: consecutive samples of `order` whose tokens sum to at most `token_budget` (when > 0;
// otherwise at most `micro` samples per row). A single longer sample still gets its own row.
std::vector<std::vector<size_t>> PackedRows(const std::vector<SftItem>& items, const std::vector<size_t>& order,
                                            int64_t micro, int64_t token_budget) {
  std::vector<std::vector<size_t>> out;
  std::vector<size_t> current;
  int64_t used = 0;
  for (size_t i : order) {
    const int64_t tokens = TokensOf(items[i]);
    const bool full = token_budget > 0 ? used + tokens > token_budget : static_cast<int64_t>(current.size()) >= micro;
    if (!current.empty() && full) {
      out.push_back(std::move(current));
      current.clear();
      used = 0;
    }
    current.push_back(i);
    used += tokens;
  }
  if (!current.empty()) out.push_back(std::move(current));
  return out;
}

absl::StatusOr<SequenceBatch> BatchOf(const std::vector<RlItem>& items, const std::vector<size_t>& idx, int64_t pad) {
  std::vector<const EncodedPrompt*> prompts;
  std::vector<std::vector<int64_t>> responses;
  for (size_t i : idx) {
    prompts.push_back(&items[i].prompt);
    responses.push_back(items[i].response_ids);
  }
  return BuildSequenceBatch(prompts, responses, pad);
}

}  // namespace

Trainer::Trainer(Policy* policy, Policy* reference, OptimizerOptions options)
    : policy_(policy), reference_(reference), options_(options) {
  policy_->set_gradient_checkpointing(options_.gradient_checkpointing);
  if (options_.precision == Precision::kModelDtype && options_.zero_stage == 0) {
    torch::optim::AdamWOptions o(options_.lr);
    o.betas({options_.beta1, options_.beta2});
    o.weight_decay(options_.weight_decay);
    optimizer_ = std::make_unique<torch::optim::AdamW>(policy_->model().parameters(), o);
  }
}

Trainer::~Trainer() = default;

absl::Status Trainer::EnsureOptimizer() {
  if (optimizer_ || sharded_) return absl::OkStatus();
  std::vector<at::Tensor> trainable;
  for (const auto& p : policy_->model().parameters()) {
    if (p.requires_grad()) trainable.push_back(p);
  }
  ShardedAdamWOptions o;
  o.beta1 = options_.beta1;
  o.beta2 = options_.beta2;
  o.weight_decay = options_.weight_decay;
  o.zero_stage = options_.zero_stage;
  o.overlap_grad_reduce = options_.overlap_grad_reduce;
  auto made = ShardedAdamW::Create(std::move(trainable), o, group_);
  if (!made.ok()) return made.status();
  sharded_ = std::move(*made);
  return absl::OkStatus();
}

void Trainer::ZeroGrad() {
  if (optimizer_) optimizer_->zero_grad();
  if (sharded_) sharded_->ZeroGrad();
}

absl::Status Trainer::AfterBackward() { return sharded_ ? sharded_->AccumulateGradients() : absl::OkStatus(); }

absl::StatusOr<int64_t> Trainer::MostMicroBatches(int64_t mine) {
  if (!sharded_ || !sharded_->AccumulateIsCollective()) return mine;
  std::vector<at::Tensor> most = {torch::tensor({mine}, torch::kInt64)};
  if (absl::Status s = group_->AllReduce(most, dist::ReduceOp::kMax); !s.ok()) return s;
  return most[0].item<int64_t>();
}

absl::Status Trainer::BalanceMicroBatches(int64_t done, int64_t most) {
  for (int64_t i = done; i < most; ++i) {
    if (absl::Status s = sharded_->AccumulateGradients(); !s.ok()) return s;  // adds zeros: keeps the collectives in step
  }
  return absl::OkStatus();
}

bool Trainer::optimizer_state_is_sharded() const {
  return options_.zero_stage > 0 && group_ != nullptr && group_->world_size() > 1;
}

OptimizerMemory Trainer::optimizer_memory() {
  if (!optimizer_) EnsureOptimizer().IgnoreError();
  return sharded_ ? sharded_->Memory() : OptimizerMemory{};
}

absl::Status Trainer::SaveOptimizerState(const std::string& dir) {
  if (absl::Status s = EnsureOptimizer(); !s.ok()) return s;
  if (sharded_) return sharded_->Save(dir);
  if (group_ && group_->rank() != 0) return absl::OkStatus();
  try {
    torch::save(*optimizer_, dir + "/optimizer.pt");
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("saving optimizer state: ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

absl::Status Trainer::LoadOptimizerState(const std::string& dir) {
  if (absl::Status s = EnsureOptimizer(); !s.ok()) return s;
  namespace fs = std::filesystem;
  const bool has_legacy = fs::exists(dir + "/optimizer.pt");
  const bool has_sharded = fs::exists(dir + "/optimizer/layout.json");
  if (sharded_) {
    if (!has_sharded && has_legacy) {
      return absl::FailedPreconditionError(absl::StrCat(
          dir, " holds torch AdamW state (learner.precision fp32, zero_stage 0); this learner keeps an fp32 master "
               "(bf16_mixed or zero_stage > 0): resume with the settings it was written with"));
    }
    return sharded_->Load(dir);
  }
  if (!has_legacy && has_sharded) {
    return absl::FailedPreconditionError(absl::StrCat(
        dir, " holds ShardedAdamW state (bf16_mixed or zero_stage > 0); this learner uses torch AdamW "
             "(fp32, zero_stage 0): resume with the settings it was written with"));
  }
  if (!has_legacy) return absl::NotFoundError(absl::StrCat("no optimizer state in ", dir));
  try {
    torch::load(*optimizer_, dir + "/optimizer.pt");
  } catch (const c10::Error& e) {
    return absl::DataLossError(absl::StrCat("optimizer state in ", dir, ": ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

std::vector<size_t> Trainer::MyShare(const std::vector<size_t>& order) const {
  return group_ ? dist::RankShare(order, group_->rank(), group_->world_size()) : order;
}

absl::Status Trainer::SumOverRanks(std::vector<double>& values) {
  if (!group_ || values.empty()) return absl::OkStatus();
  std::vector<at::Tensor> t = {torch::tensor(values, torch::kFloat64)};
  if (absl::Status s = group_->AllReduce(t); !s.ok()) return s;
  for (size_t i = 0; i < values.size(); ++i) values[i] = t[0][static_cast<int64_t>(i)].item<double>();
  return absl::OkStatus();
}

absl::StatusOr<bool> Trainer::ApplyGradients(double* grad_norm, double* lr) {
  if (sharded_) {
    *lr = LearningRateAt({options_.lr, options_.warmup_ratio, options_.min_lr_ratio, options_.total_steps}, step_);
    auto norm = sharded_->ReduceGradients();  // global over ranks
    if (!norm.ok()) return norm.status();
    *grad_norm = *norm;
    if (!std::isfinite(*norm)) {
      sharded_->ZeroGrad();
      return false;
    }
    const double clip = options_.grad_clip / (*norm + 1e-6);  // as torch::nn::utils::clip_grad_norm_
    if (absl::Status s = sharded_->Step(*lr, clip < 1 ? clip : 1.0); !s.ok()) return s;
    sharded_->ZeroGrad();
    ++step_;
    return true;
  }
  auto params = policy_->model().parameters();
  if (group_) {
    if (absl::Status s = dist::AllReduceGradients(*group_, params); !s.ok()) return s;
  }
  *grad_norm = torch::nn::utils::clip_grad_norm_(params, options_.grad_clip);
  *lr = LearningRateAt({options_.lr, options_.warmup_ratio, options_.min_lr_ratio, options_.total_steps}, step_);
  if (!std::isfinite(*grad_norm)) {
    optimizer_->zero_grad();
    return false;
  }
  for (auto& group : optimizer_->param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(*lr);
  optimizer_->step();
  optimizer_->zero_grad();
  ++step_;
  return true;
}

absl::StatusOr<StepResult> Trainer::SftStep(const std::vector<SftItem>& items) {
  const auto start = Clock::now();
  if (items.empty()) return absl::InvalidArgumentError("SftStep: no examples");
  double total_tokens = 0;
  for (const auto& it : items) {
    if (it.target_ids.empty()) return absl::InvalidArgumentError("SftStep: an example has no target tokens");
    total_tokens += static_cast<double>(it.target_ids.size());
  }
  if (absl::Status s = EnsureOptimizer(); !s.ok()) return s;
  policy_->model().train();
  ZeroGrad();
  std::vector<size_t> order(items.size());
  std::iota(order.begin(), order.end(), 0);
  double loss_sum = 0, forward = 0, backward = 0, padded_tokens = 0;
  int64_t micro_batches = 0;
  const bool pack = options_.pack_sequences;
  const auto micros = pack ? PackedRows(items, MyShare(order), options_.micro_batch, options_.micro_batch_tokens)
                           : MicroBatches(items, MyShare(order), options_.micro_batch, options_.micro_batch_tokens);
  // Stage 2 reduces after every micro-batch: every rank runs as many reductions as the busiest one.
  auto most = MostMicroBatches(static_cast<int64_t>(micros.size()));
  if (!most.ok()) return most.status();
  for (const auto& micro : micros) {
    std::vector<const EncodedPrompt*> prompts;
    std::vector<std::vector<int64_t>> targets;
    for (size_t i : micro) {
      prompts.push_back(&items[i].prompt);
      targets.push_back(items[i].target_ids);
    }
    auto t0 = Clock::now();
    // The sum of the target tokens' log-probs of this micro-batch.
    at::Tensor logp_sum;
    if (pack) {
      auto batch = BuildPackedSequenceBatch(prompts, targets);
      if (!batch.ok()) return batch.status();
      batch->input.checkpoint_layers = policy_->gradient_checkpointing();
      auto logp = model::ComputeTokenLogProbsAt(policy_->model(), batch->input, batch->target_positions);
      if (!logp.ok()) return logp.status();
      logp_sum = logp->sum();
      padded_tokens += static_cast<double>(batch->tokens);
    } else {
      auto batch = BuildSequenceBatch(prompts, targets, policy_->pad_id());
      if (!batch.ok()) return batch.status();
      auto logp = policy_->ResponseLogProbs(*batch);
      if (!logp.ok()) return logp.status();
      logp_sum = (*logp * batch->response_mask.to(logp->device())).sum();
      padded_tokens += static_cast<double>(batch->input.input_ids.numel());
    }
    // Token-mean cross-entropy over the whole step: each micro-batch adds its share of the sum.
    auto loss = -logp_sum / total_tokens;
    forward += Seconds(t0);
    t0 = Clock::now();
    loss.backward();
    if (absl::Status s = AfterBackward(); !s.ok()) return s;
    ++micro_batches;
    backward += Seconds(t0);
    loss_sum += loss.item<double>();
  }
  if (absl::Status s = BalanceMicroBatches(micro_batches, *most); !s.ok()) return s;
  std::vector<double> summed = {loss_sum};
  if (absl::Status s = SumOverRanks(summed); !s.ok()) return s;
  StepResult r;
  r.loss = summed[0];
  const auto t0 = Clock::now();
  bool applied = false;
  if (std::isfinite(r.loss)) {  // the same verdict on every rank: the loss is summed over all of them
    auto stepped = ApplyGradients(&r.grad_norm, &r.learning_rate);
    if (!stepped.ok()) return stepped.status();
    applied = *stepped;
  }
  if (!applied) {
    ZeroGrad();
    r.skipped_steps = 1;
  } else {
    r.optimizer_steps = 1;
  }
  r.metrics["tokens"] = total_tokens;
  // Tokens this rank ran through the model, padding included (packed rows have none).
  r.metrics["forward_tokens"] = padded_tokens;
  r.metrics["forward_seconds"] = forward;
  r.metrics["backward_seconds"] = backward;
  r.metrics["optimizer_seconds"] = Seconds(t0);
  r.seconds = Seconds(start);
  return r;
}

absl::StatusOr<StepResult> Trainer::RlStep(const std::vector<RlItem>& items, const RlStepOptions& options) {
  const auto start = Clock::now();
  if (items.empty()) return absl::InvalidArgumentError("RlStep: no trajectories");
  if (absl::Status s = rl::Validate(options.algorithm); !s.ok()) return s;
  const bool use_kl = options.algorithm.advantage.kl_coef > 0;
  if (use_kl && reference_ == nullptr) return absl::FailedPreconditionError("kl_coef > 0 needs a reference model");
  if (absl::Status s = EnsureOptimizer(); !s.ok()) return s;
  const int64_t n = static_cast<int64_t>(items.size());
  int64_t width = 0;
  for (const auto& it : items) {
    if (it.response_ids.empty()) return absl::InvalidArgumentError("RlStep: a trajectory has no response tokens");
    width = std::max<int64_t>(width, it.response_ids.size());
  }
  if (options.ratio_against_behaviour) {
    for (size_t i = 0; i < items.size(); ++i) {
      if (items[i].behaviour_logprobs.size() != items[i].response_ids.size()) {
        return absl::InvalidArgumentError(absl::StrCat("RlStep: trajectory ", i, " has no behaviour log-probs, which "
                                                       "the off-policy ratio needs"));
      }
    }
  }
  std::vector<size_t> order(items.size());
  std::iota(order.begin(), order.end(), 0);
  // The sampler's temperature: ratios compare the distribution the actor actually sampled from.
  const double temperature = options.temperature > 0 ? options.temperature : 1.0;

  // 1. logp_old (and logp_ref) with the pre-update policy, no grad.
  auto logp_old = torch::zeros({n, width});
  auto logp_ref = torch::zeros({n, width});
  auto mask = torch::zeros({n, width});
  auto behaviour = torch::zeros({n, width});
  auto behaviour_mask = torch::zeros({n, width});  // rows whose actor log-probs came along
  double forward = 0, backward = 0, optimizer_seconds = 0;
  {
    const auto t0 = Clock::now();
    torch::NoGradGuard no_grad;
    policy_->model().eval();
    for (const auto& micro : MicroBatches(items, MyShare(order), options_.micro_batch, options_.micro_batch_tokens)) {
      auto batch = BatchOf(items, micro, policy_->pad_id());
      if (!batch.ok()) return batch.status();
      auto lp = policy_->ResponseLogProbs(*batch, temperature);
      if (!lp.ok()) return lp.status();
      at::Tensor ref;
      if (use_kl) {
        auto r = reference_->ResponseLogProbs(*batch, temperature);
        if (!r.ok()) return r.status();
        ref = *r;
      }
      for (size_t k = 0; k < micro.size(); ++k) {
        const int64_t row = static_cast<int64_t>(micro[k]);
        const int64_t len = static_cast<int64_t>(items[micro[k]].response_ids.size());
        logp_old[row].narrow(0, 0, len).copy_((*lp)[static_cast<int64_t>(k)].narrow(0, 0, len));
        if (use_kl) logp_ref[row].narrow(0, 0, len).copy_(ref[static_cast<int64_t>(k)].narrow(0, 0, len));
        mask[row].narrow(0, 0, len).fill_(1.0);
        const auto& b = items[micro[k]].behaviour_logprobs;
        if (static_cast<int64_t>(b.size()) == len) {
          behaviour[row].narrow(0, 0, len).copy_(torch::tensor(b));
          behaviour_mask[row].narrow(0, 0, len).fill_(1.0);
        }
      }
    }
    forward += Seconds(t0);
  }
  if (group_) {  // each row was filled by exactly one rank: the sum is the whole rollout everywhere
    std::vector<at::Tensor> rows = {logp_old, logp_ref, mask, behaviour, behaviour_mask};
    if (absl::Status s = group_->AllReduce(rows); !s.ok()) return s;
  }
  // Mean |logp_behaviour - logp_learner| per token: actor/learner numerics drift, or the policy lag.
  const double mismatch = ((behaviour - logp_old).abs() * behaviour_mask).sum().item<double>() /
                          std::max(1.0, behaviour_mask.sum().item<double>());
  if (options.ratio_against_behaviour) logp_old = behaviour;
  // 2. Advantages: token rewards, returns, whitening over all valid tokens, 3-sigma filter.
  std::vector<float> rewards;
  for (const auto& it : items) rewards.push_back(static_cast<float>(it.reward));
  rl::RolloutBatch rollout{torch::tensor(rewards), mask, logp_old, logp_ref};
  const rl::WhitenedAdvantages adv = rl::ComputeAdvantages(rollout, options.algorithm.advantage);

  StepResult r;
  r.metrics["adv_filtered_fraction"] = adv.filter.FilteredFraction();
  r.metrics["adv_mean"] = adv.mean;
  r.metrics["adv_std"] = adv.std;
  r.metrics["reward_mean"] = torch::tensor(rewards).mean().item<double>();
  r.metrics["response_length_mean"] = mask.sum(1).mean().item<double>();
  r.metrics["logprob_mismatch"] = mismatch;
  if (use_kl) r.metrics["kl"] = ((logp_old - logp_ref) * mask).sum().item<double>() / mask.sum().item<double>();

  // 3. Minibatch epochs of the pre-clipped PPO loss.
  policy_->model().train();
  std::mt19937_64 rng(options.shuffle_seed);
  double clip = 0, preclip = 0, approx_kl = 0, tokens = 0, loss_sum = 0, grad_sum = 0;
  double ratio_min = 1e30, ratio_max = -1e30;
  int64_t losses = 0;
  for (int64_t epoch = 0; epoch < options.ppo_epochs; ++epoch) {
    std::vector<size_t> shuffled = order;
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    for (size_t mb = 0; mb < shuffled.size(); mb += static_cast<size_t>(options.train_batch_size)) {
      std::vector<size_t> minibatch(shuffled.begin() + static_cast<long>(mb),
                                    shuffled.begin() + static_cast<long>(std::min(
                                                           shuffled.size(), mb + static_cast<size_t>(options.train_batch_size))));
      auto idx = torch::tensor(std::vector<int64_t>(minibatch.begin(), minibatch.end()));
      const double minibatch_tokens = mask.index_select(0, idx).sum().item<double>();
      double minibatch_loss = 0;
      int64_t micro_batches = 0;
      ZeroGrad();
      const auto micros = MicroBatches(items, MyShare(minibatch), options_.micro_batch, options_.micro_batch_tokens);
      auto most = MostMicroBatches(static_cast<int64_t>(micros.size()));
      if (!most.ok()) return most.status();
      for (const auto& micro : micros) {
        auto batch = BatchOf(items, micro, policy_->pad_id());
        if (!batch.ok()) return batch.status();
        auto t0 = Clock::now();
        auto logp = policy_->ResponseLogProbs(*batch, temperature);
        if (!logp.ok()) return logp.status();
        auto rows = torch::tensor(std::vector<int64_t>(micro.begin(), micro.end()));
        const int64_t w = logp->size(1);
        // Rollout tensors live on the CPU (the fused advantage pass); the loss runs where logp is.
        auto slice = [&](const at::Tensor& t) { return t.index_select(0, rows).narrow(1, 0, w).to(logp->device()); };
        rl::PolicyLossResult pl = rl::PolicyLoss(*logp, slice(logp_old), slice(adv.advantages), slice(mask),
                                                 options.algorithm.loss, true, minibatch_tokens);
        // Sequence-mean aggregation: this micro-batch's mean counts with weight b / minibatch size.
        const bool seq_mean = options.algorithm.loss.aggregation == rl::LossAggregation::kSequenceMeanOfTokenMeans;
        auto loss = seq_mean ? pl.loss * (static_cast<double>(micro.size()) / static_cast<double>(minibatch.size()))
                             : pl.loss;
        forward += Seconds(t0);
        t0 = Clock::now();
        loss.backward();
        if (absl::Status s = AfterBackward(); !s.ok()) return s;
        ++micro_batches;
        backward += Seconds(t0);
        minibatch_loss += loss.item<double>();
        const double t = static_cast<double>(pl.diagnostics.valid_tokens);
        clip += pl.diagnostics.clip_fraction * t;
        preclip += pl.diagnostics.pre_clip_fraction * t;
        approx_kl += pl.diagnostics.approx_kl * t;
        tokens += t;
        ratio_min = std::min(ratio_min, pl.diagnostics.ratio_min);
        ratio_max = std::max(ratio_max, pl.diagnostics.ratio_max);
      }
      if (absl::Status s = BalanceMicroBatches(micro_batches, *most); !s.ok()) return s;
      std::vector<double> summed = {minibatch_loss};
      if (absl::Status s = SumOverRanks(summed); !s.ok()) return s;
      minibatch_loss = summed[0];
      double grad_norm = 0, lr = 0;
      const auto t0 = Clock::now();
      bool applied = false;
      if (std::isfinite(minibatch_loss)) {
        auto stepped = ApplyGradients(&grad_norm, &lr);
        if (!stepped.ok()) return stepped.status();
        applied = *stepped;
      }
      optimizer_seconds += Seconds(t0);
      if (!applied) {
        ZeroGrad();
        ++r.skipped_steps;
        continue;
      }
      ++r.optimizer_steps;
      loss_sum += minibatch_loss;
      grad_sum += grad_norm;
      r.learning_rate = lr;
      ++losses;
    }
  }
  std::vector<double> diagnostics = {clip, preclip, approx_kl, tokens};
  if (absl::Status s = SumOverRanks(diagnostics); !s.ok()) return s;
  clip = diagnostics[0], preclip = diagnostics[1], approx_kl = diagnostics[2], tokens = diagnostics[3];
  if (group_) {
    std::vector<at::Tensor> low = {torch::tensor({ratio_min}, torch::kFloat64)};
    std::vector<at::Tensor> high = {torch::tensor({ratio_max}, torch::kFloat64)};
    if (absl::Status s = group_->AllReduce(low, dist::ReduceOp::kMin); !s.ok()) return s;
    if (absl::Status s = group_->AllReduce(high, dist::ReduceOp::kMax); !s.ok()) return s;
    ratio_min = low[0].item<double>();
    ratio_max = high[0].item<double>();
  }
  r.loss = losses ? loss_sum / static_cast<double>(losses) : std::nan("");
  r.grad_norm = losses ? grad_sum / static_cast<double>(losses) : 0;
  r.metrics["clip_fraction"] = tokens ? clip / tokens : 0;
  r.metrics["preclip_fraction"] = tokens ? preclip / tokens : 0;
  r.metrics["approx_kl"] = tokens ? approx_kl / tokens : 0;
  r.metrics["ratio_min"] = ratio_min;
  r.metrics["ratio_max"] = ratio_max;
  r.metrics["tokens"] = mask.sum().item<double>();
  r.metrics["forward_seconds"] = forward;
  r.metrics["backward_seconds"] = backward;
  r.metrics["optimizer_seconds"] = optimizer_seconds;
  r.seconds = Seconds(start);
  return r;
}

}  // namespace r1r::train
