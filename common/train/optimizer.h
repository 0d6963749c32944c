// AdamW over fp32 master weights, optionally sharded across data-parallel ranks (ZeRO stages 1 and 2).
//
// The trainable parameters are laid out back to back in one flat buffer of the model's dtype (every
// parameter becomes a view into it), padded to a multiple of the world size and cut into equal
// contiguous shards, one per rank:
//
//   stage 0: every rank keeps the fp32 master, both moments and an fp32 gradient accumulator for all
//            parameters; gradients are summed with bucketed all-reduces before the step.
//   stage 1: the master and moments of rank r cover only shard r; gradients still accumulate in a full
//            fp32 buffer, are reduce-scattered in buckets before the step, each rank updates its shard
//            and the updated parameter slices are all-gathered.
//   stage 2: as stage 1, and the gradient accumulator is the shard too. With several ranks the gradients
//            are reduced while backward runs (GradBucketReducer: a hook on each parameter's gradient
//            accumulator fills contiguous buckets in reverse layer order and starts an async reduce to
//            the bucket's owner when it is full, freeing the full-size .grad); AccumulateGradients()
//            after each micro-batch's backward waits for them and adds the sums into the shard.
//            overlap_grad_reduce = false reduce-scatters after the backward instead (the same sums).
//            Every rank must call AccumulateGradients() the same number of times per step.
//
// With float32 parameters the master is the parameters themselves (the shard is a view into the
// flat buffer) and their .grad are views into the fp32 accumulator (stages 0 and 1), so nothing is
// held twice. With bfloat16 parameters (precision bf16_mixed) forward and backward run in bf16, each
// micro-batch's bf16 gradients are added into the fp32 accumulator and freed, and the bf16 weights are
// refreshed from the fp32 master after every step. Gradient-norm clipping is over the global norm.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <absl/status/statusor.h>

namespace r1r::dist {
class ProcessGroup;
}

namespace r1r::train {

class GradBucketReducer;

struct ShardedAdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.0;
  int zero_stage = 0;               // 0, 1 or 2
  int64_t bucket_bytes = 32 << 20;  // fp32 bytes per collective when reducing gradients
  bool overlap_grad_reduce = true;  // stage 2: reduce buckets during backward (see above)
};

// Bytes this rank holds for the optimiser's three kinds of state (the flat parameter buffer, the
// fp32 gradient accumulator, and master + moments where the master is not the parameters).
struct OptimizerMemory {
  int64_t parameters = 0;
  int64_t gradients = 0;
  int64_t optimizer = 0;
};

class ShardedAdamW {
 public:
  // `params`: the trainable parameters (same dtype and device, float32 or bfloat16), in a fixed order
  // that every rank shares. They are re-pointed into one flat buffer. `group` may be null (alone).
  static absl::StatusOr<std::unique_ptr<ShardedAdamW>> Create(std::vector<at::Tensor> params,
                                                              const ShardedAdamWOptions& options,
                                                              dist::ProcessGroup* group);
  ~ShardedAdamW();

  // Clears the accumulated gradients (call before the first micro-batch of a step).
  void ZeroGrad();
  // After each micro-batch's backward: moves the parameters' gradients into the fp32 accumulator
  // (bf16, or stage 2 where they are reduce-scattered across ranks, during the backward when
  // overlapped) and frees them.
  absl::Status AccumulateGradients();
  // True when AccumulateGradients() is a collective (stage 2 with more than one rank).
  bool AccumulateIsCollective() const;
  // Sums the accumulated gradients over ranks (stages 0 and 1) and returns the global L2 norm.
  absl::StatusOr<double> ReduceGradients();
  // One AdamW step of this rank's shard with the reduced gradients times `grad_scale` (clipping), then
  // refreshes the parameters (bf16 copy; all-gather of the updated slices for stages 1 and 2).
  absl::Status Step(double lr, double grad_scale);

  // This rank's state as <dir>/optimizer/shard-<rank>-of-<world>.pt (stage 0: rank 0 only, one shard
  // covering everything) plus <dir>/optimizer/layout.json (rank 0). Any number of ranks can load it.
  absl::Status Save(const std::string& dir) const;
  // Re-shards on load: reads the slices of every saved shard that overlap this rank's shard.
  absl::Status Load(const std::string& dir);

  OptimizerMemory Memory() const;
  int64_t steps() const { return steps_; }
  int64_t numel() const { return numel_; }  // trainable elements
  int zero_stage() const { return options_.zero_stage; }
  bool mixed() const { return mixed_; }  // bf16 weights with an fp32 master

 private:
  ShardedAdamW() = default;
  // Copies elements [a, b) of the flat gradient (the parameters' .grad, zeros where undefined or in the
  // padding) into `dst` as fp32.
  void GatherGrads(int64_t a, int64_t b, at::Tensor dst) const;
  // Sums `fill`ed windows over ranks into this rank's shard of `dst` in buckets (chunk r of a bucket
  // is the same window of shard r). `accumulate`: add instead of overwrite.
  absl::Status ReduceScatterFlat(bool from_accumulator, at::Tensor dst, bool accumulate);
  void ReleaseParamGrads();

  ShardedAdamWOptions options_;
  dist::ProcessGroup* group_ = nullptr;
  int rank_ = 0;
  int world_ = 1;
  bool mixed_ = false;
  std::vector<at::Tensor> params_;
  std::vector<int64_t> offsets_;  // flat offset of each parameter
  int64_t numel_ = 0;             // trainable elements
  int64_t shard_ = 0;             // elements per shard (padded)
  int64_t begin_ = 0, end_ = 0;   // this rank's elements [begin_, end_) of the flat vector (unpadded)
  at::Tensor flat_params_;        // [shard_ * world_] model dtype; the parameters are views into it
  at::Tensor master_;             // fp32 [end_ - begin_]: a view of flat_params_ when float32
  at::Tensor exp_avg_, exp_avg_sq_;
  at::Tensor grad_acc_;           // fp32: [shard_ * world_] (stages 0, 1) or [end_ - begin_] (stage 2)
  at::Tensor reduced_;            // the reduced gradient of this rank's shard (a view of grad_acc_)
  std::unique_ptr<GradBucketReducer> reducer_;  // stage 2 on several ranks with overlap_grad_reduce
  int64_t steps_ = 0;
};

}  // namespace r1r::train
