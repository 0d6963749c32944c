// SFT and StableReinforce optimisation of a Policy: AdamW with warmup + cosine-to-floor schedule,
// gradient clipping, micro-batching (the paper's 2-sequence micro-batches become a memory knob), and
// a skipped step — never a corrupted model — when the loss or the gradient is not finite.
#pragma once

#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <absl/status/statusor.h>

#include "common/rl/config.h"
#include "common/train/policy.h"
#include "common/train/schedule.h"

namespace torch::optim {
class Optimizer;
}
namespace r1r::dist {
class ProcessGroup;
}

namespace r1r::train {

class ShardedAdamW;
struct OptimizerMemory;

// How the learner keeps its weights and optimizer state.
enum class Precision {
  // AdamW in the parameters' own dtype (torch::optim::AdamW): exact fp32 training for a float32
  // model. With bfloat16 parameters the moments are bf16 too and small steps round away (the old path).
  kModelDtype,
  // bf16 forward/backward, fp32 master weights, fp32 AdamW moments, fp32 gradient accumulation over
  // micro-batches, the bf16 weights refreshed from the master after each step (ShardedAdamW).
  kBf16Mixed,
};

struct OptimizerOptions {
  double lr = 1e-6;
  double warmup_ratio = 0.03;
  double min_lr_ratio = 0.1;
  double weight_decay = 0.0;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double grad_clip = 1.0;
  int64_t total_steps = 1;       // optimizer steps of this phase, for the schedule
  int64_t micro_batch = 8;       // sequences per forward/backward
  int64_t micro_batch_tokens = 0;  // > 0: also cap padded tokens per forward/backward (memory knob)
  Precision precision = Precision::kModelDtype;
  // 0: replicated optimizer state; 1: fp32 master + moments sharded over the ranks; 2: gradients too
  // (ShardedAdamW, optimizer.h). Anything but kModelDtype with stage 0 uses ShardedAdamW.
  int zero_stage = 0;
  // Stage 2 on several ranks: reduce gradient buckets while the backward runs (false: after it).
  bool overlap_grad_reduce = true;
  // Activation checkpointing of the decoder layers and vision blocks in every training forward.
  bool gradient_checkpointing = false;
  // SFT only: each micro-batch is one row of samples back to back (BuildPackedSequenceBatch), up to
  // micro_batch_tokens real tokens (then micro_batch does not cap it) or, when that is 0, micro_batch
  // samples. No padding; each sample attends only to itself; loss and gradients equal the padded path's.
  bool pack_sequences = false;
};

struct SftItem {
  EncodedPrompt prompt;
  std::vector<int64_t> target_ids;  // reasoning + answer + <|im_end|>; the loss covers only these
};

struct RlItem {
  EncodedPrompt prompt;
  std::vector<int64_t> response_ids;     // as sampled, <|im_end|> included when it stopped
  std::vector<float> behaviour_logprobs;  // from the actor, for the mismatch diagnostic
  double reward = 0;                      // R = wf·format + result·(1 + wc·consistency)
};

struct RlStepOptions {
  rl::RlAlgorithmConfig algorithm;
  int64_t train_batch_size = 128;  // sequences per optimizer step (a rollout of 256 gives 2 steps)
  int64_t ppo_epochs = 1;
  uint64_t shuffle_seed = 0;
  double temperature = 1.0;  // the actors' sampling temperature; log-probs are taken at it
  // Off-policy mode: the PPO ratio is taken against the actors' behaviour log-probs (every trajectory
  // must carry them) instead of this policy's pre-update forward, which then serves diagnostics only.
  bool ratio_against_behaviour = false;
};

struct StepResult {
  double loss = 0;
  double grad_norm = 0;
  double learning_rate = 0;
  int64_t optimizer_steps = 0;
  int64_t skipped_steps = 0;   // non-finite loss or gradient
  std::map<std::string, double> metrics;
  double seconds = 0;
};

class Trainer {
 public:
  // `reference` (may be null) is the frozen policy for the KL term when β > 0.
  Trainer(Policy* policy, Policy* reference, OptimizerOptions options);
  ~Trainer();

  // One optimizer step over `items` (token-mean cross-entropy over all target tokens).
  absl::StatusOr<StepResult> SftStep(const std::vector<SftItem>& items);
  // One rollout: logp_old from this policy before any update, advantages (whitening + filter),
  // then ppo_epochs x (rollout / train_batch_size) optimizer steps of the pre-clipped loss.
  absl::StatusOr<StepResult> RlStep(const std::vector<RlItem>& items, const RlStepOptions& options);

  // Data parallel: every rank calls each step with the same items and options; each rank runs the
  // forward/backward of its share of every batch, and sums of gradients, losses and rollout tensors
  // go over `group`, so all ranks take the same optimizer step as one process would. Null = alone.
  void set_process_group(dist::ProcessGroup* group) { group_ = group; }
  dist::ProcessGroup* process_group() const { return group_; }

  int64_t steps_done() const { return step_; }
  void set_steps_done(int64_t step) { step_ = step; }

  // Optimizer state into / out of a checkpoint directory: optimizer.pt (torch AdamW), or
  // optimizer/shard-*.pt + layout.json (ShardedAdamW; written by every rank that holds a shard, and
  // re-sharded on load for any number of ranks).
  absl::Status SaveOptimizerState(const std::string& dir);
  absl::Status LoadOptimizerState(const std::string& dir);
  // True when every rank must call SaveOptimizerState (its state is sharded across ranks).
  bool optimizer_state_is_sharded() const;
  // Bytes of flat parameters / fp32 gradients / master + moments held by ShardedAdamW on this rank
  // (zeros for the torch AdamW path).
  OptimizerMemory optimizer_memory();

 private:
  // Sums gradients over ranks, clips, checks finiteness and steps; false (grads zeroed) when skipped.
  absl::StatusOr<bool> ApplyGradients(double* grad_norm, double* lr);
  // The positions of `order` this rank trains on (all of them when alone).
  std::vector<size_t> MyShare(const std::vector<size_t>& order) const;
  // Sums `values` over ranks in place (one collective).
  absl::Status SumOverRanks(std::vector<double>& values);
  // ShardedAdamW is made on first use (it needs the process group).
  absl::Status EnsureOptimizer();
  void ZeroGrad();
  // After each micro-batch's backward.
  absl::Status AfterBackward();
  // Stage 2 with several ranks reduces gradients after every micro-batch (a collective): the ranks agree
  // on the most micro-batches any of them has before the first, and the others add empty reductions.
  absl::StatusOr<int64_t> MostMicroBatches(int64_t mine);
  absl::Status BalanceMicroBatches(int64_t done, int64_t most);

  Policy* policy_;
  Policy* reference_;
  OptimizerOptions options_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;  // kModelDtype with stage 0
  std::unique_ptr<ShardedAdamW> sharded_;                // otherwise
  int64_t step_ = 0;
  dist::ProcessGroup* group_ = nullptr;
};

}  // namespace r1r::train
