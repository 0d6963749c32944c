// ZeRO-2's gradient reduction overlapped with the backward pass.
//
// The trainable parameters sit back to back in one flat vector cut into equal shards, one per rank
// (ShardedAdamW). This cuts the vector into buckets of contiguous elements, from the end down (the
// order in which backward produces the gradients: last layers first), never across a shard boundary,
// so each bucket has one owner. A post hook on each parameter's gradient accumulator (the AccumulateGrad
// node, which LibTorch 1.13 exposes in C++; Python gained the same hook only in 2.1) copies the freshly
// accumulated .grad into its buckets as fp32 and frees it; a bucket whose parameters have all reported
// starts an asynchronous reduce to its owner while backward goes on. Buckets start strictly in their
// fixed order (a ready bucket waits for the ones before it), so every rank issues the same collectives
// in the same order whatever its graph; Finish() starts those no gradient reached (zeros), waits for
// all of them and adds the owner's sums into its fp32 shard accumulator.
//
// Where overlap is impossible the gradient is left for the synchronous path: a parameter whose
// accumulator runs twice in one backward (e.g. re-entrant checkpointing of a parameter that is also
// used outside the checkpointed layer) after its bucket already left keeps its .grad, and Finish()
// reports, agreed over all ranks, that the caller must reduce the remaining .grad itself.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <ATen/core/Tensor.h>
#include <absl/status/statusor.h>

namespace r1r::dist {
class ProcessGroup;
}

namespace r1r::train {

class GradBucketReducer {
 public:
  // `params` and their flat `offsets` as ShardedAdamW lays them out; shard r owns flat elements
  // [r * shard, (r + 1) * shard). Registers the hooks; the destructor removes them.
  static absl::StatusOr<std::unique_ptr<GradBucketReducer>> Create(const std::vector<at::Tensor>& params,
                                                                   const std::vector<int64_t>& offsets,
                                                                   int64_t shard, int64_t bucket_elements,
                                                                   dist::ProcessGroup* group);
  ~GradBucketReducer();

  // After a backward (or in its place, to keep the ranks' collectives in step): starts the buckets still
  // waiting, waits for every reduce, and adds this rank's sums into `shard_accumulator` (fp32, [shard]).
  // Returns true when some rank kept a late gradient in .grad (see above): every rank then gets true.
  // On a failed collective the buckets still in flight are abandoned and the error is returned.
  absl::StatusOr<bool> Finish(at::Tensor shard_accumulator);
  // Forgets a backward in progress (ZeroGrad): drops the buckets' buffers without reducing them.
  void Reset();

  int64_t bucket_count() const;

 private:
  struct State;
  explicit GradBucketReducer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace r1r::train
