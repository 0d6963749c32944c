// Data-parallel collectives for the learner's ranks, over LibTorch's c10d: Gloo on CPU, NCCL on CUDA
// (when this LibTorch was built with it). Rank 0 hosts the TCPStore rendezvous at master_host:port;
// every call blocks until all ranks join it or the timeout passes, and reports failures as a Status
// (c10d throws; nothing here does).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/status.h>
#include <absl/status/statusor.h>

namespace at {
class Tensor;
}

namespace r1r::dist {

enum class Backend { kGloo, kNccl };
absl::StatusOr<Backend> ParseBackend(std::string_view name);  // gloo | nccl

// A --dist-rank value: a number, or "hostname" for the ordinal a StatefulSet puts at the end of its
// pods' names ("r1r-learner-2" is rank 2), so every replica can run the same arguments.
absl::StatusOr<int> ParseRank(std::string_view value, std::string_view hostname);

struct GroupOptions {
  Backend backend = Backend::kGloo;
  int rank = 0;
  int world_size = 1;
  std::string master_host = "127.0.0.1";
  int master_port = 29500;
  // How long a collective (and the rendezvous) waits for the other ranks.
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};
};
absl::Status Validate(const GroupOptions& options);

enum class ReduceOp { kSum, kMin, kMax };

// A collective started by ProcessGroup::ReduceAsync, running on the backend's threads while the caller
// goes on (e.g. with the backward pass). Wait() blocks until it finished, failed, or passed the group's
// timeout; the backend keeps the tensors it was given alive until then, even if the handle is dropped.
class PendingCollective {
 public:
  PendingCollective();
  ~PendingCollective();
  PendingCollective(PendingCollective&&) noexcept;
  PendingCollective& operator=(PendingCollective&&) noexcept;
  absl::Status Wait();

 private:
  friend class ProcessGroup;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class ProcessGroup {
 public:
  static absl::StatusOr<std::unique_ptr<ProcessGroup>> Create(const GroupOptions& options);
  ~ProcessGroup();

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }

  // In place on every rank; the tensors must have the same shapes and dtypes everywhere.
  absl::Status AllReduce(std::vector<at::Tensor>& tensors, ReduceOp op = ReduceOp::kSum);
  absl::Status Broadcast(at::Tensor& tensor, int root);
  // `bytes` is read on `root` and replaced on every other rank.
  absl::Status BroadcastBytes(std::string* bytes, int root);
  absl::Status Barrier();
  // Every rank contributes `input` ([n], contiguous); `output` ([world_size * n]) receives the
  // contributions in rank order on every rank. `input` may be a view into `output`.
  absl::Status AllGather(const at::Tensor& input, at::Tensor& output);
  // Sums `input` ([world_size * n]) over ranks and writes this rank's chunk of the sum, elements
  // [rank * n, (rank + 1) * n), into `output` ([n]). A native reduce-scatter where the backend has one
  // (NCCL; Gloo in LibTorch >= 2), otherwise one reduce per rank of that rank's chunk.
  absl::Status ReduceScatter(const at::Tensor& input, at::Tensor& output);
  // Starts summing `tensor` (contiguous, the same size on every rank) over ranks into `tensor` on `root`
  // and returns without waiting; on the other ranks `tensor` is scratch. Every rank must start its async
  // collectives in the same order (c10d matches them by order).
  absl::StatusOr<PendingCollective> ReduceAsync(const at::Tensor& tensor, int root);
  // The sum of one integer over all ranks (agreement flags, counts) without torch in the caller.
  absl::StatusOr<int64_t> SumOverRanks(int64_t value);

 private:
  struct Impl;
  ProcessGroup(int rank, int world_size, std::unique_ptr<Impl> impl);
  int rank_;
  int world_size_;
  std::unique_ptr<Impl> impl_;
  bool native_reduce_scatter_ = true;  // cleared the first time the backend refuses one
};

// Sums the gradients of `params` over all ranks, in flat buckets of at most `bucket_bytes` (one
// collective per bucket instead of one per tensor). A trained parameter without a gradient counts as
// zeros; frozen ones (requires_grad false) are skipped.
absl::Status AllReduceGradients(ProcessGroup& group, const std::vector<at::Tensor>& params,
                                int64_t bucket_bytes = 32 << 20);

// The positions of `order` this rank handles (every world_size-th, from `rank`): a fixed split, so
// every rank knows which rows every other rank filled.
std::vector<size_t> RankShare(const std::vector<size_t>& order, int rank, int world_size);

}  // namespace r1r::dist
