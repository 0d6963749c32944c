#include "common/dist/process_group.h"

#include <torch/torch.h>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <algorithm>
#include <cstring>
#include <exception>
#include <string>

#include <absl/strings/ascii.h>
#include <absl/strings/numbers.h>
#include <absl/strings/str_cat.h>

#include "common/dist/c10d_group.h"

namespace r1r::dist {
namespace {

c10d::ReduceOp ToC10d(ReduceOp op) {
  switch (op) {
    case ReduceOp::kMin:
      return c10d::ReduceOp::MIN;
    case ReduceOp::kMax:
      return c10d::ReduceOp::MAX;
    case ReduceOp::kSum:
      break;
  }
  return c10d::ReduceOp::SUM;
}

}  // namespace

struct PendingCollective::Impl {
  c10::intrusive_ptr<c10d::Work> work;  // null: nothing to wait for (one rank)
  at::Tensor staged, target;            // target undefined unless the backend's copy must come back
  int rank = 0;
};

PendingCollective::PendingCollective() = default;
PendingCollective::~PendingCollective() = default;
PendingCollective::PendingCollective(PendingCollective&&) noexcept = default;
PendingCollective& PendingCollective::operator=(PendingCollective&&) noexcept = default;

absl::Status PendingCollective::Wait() {
  if (!impl_ || !impl_->work) return absl::OkStatus();
  try {
    impl_->work->wait();  // throws on a peer's failure or after the group's timeout
    if (impl_->target.defined()) impl_->target.copy_(impl_->staged);
  } catch (const std::exception& e) {
    impl_->work.reset();
    return absl::UnavailableError(absl::StrCat("dist: reduce on rank ", impl_->rank, ": ", e.what()));
  }
  impl_->work.reset();
  return absl::OkStatus();
}

struct ProcessGroup::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<CollectiveGroup> group;
  at::Device device{at::kCPU};  // where the backend wants its tensors
};

absl::StatusOr<Backend> ParseBackend(std::string_view name) {
  if (name == "gloo") return Backend::kGloo;
  if (name == "nccl") return Backend::kNccl;
  return absl::InvalidArgumentError(absl::StrCat("dist backend must be gloo or nccl, got '", std::string(name), "'"));
}

absl::StatusOr<int> ParseRank(std::string_view value_view, std::string_view hostname_view) {
  const std::string value(value_view), hostname(hostname_view);  // this abseil's string_view is its own type
  int rank = 0;
  if (value != "hostname") {
    if (!absl::SimpleAtoi(value, &rank) || rank < 0) {
      return absl::InvalidArgumentError(absl::StrCat("dist: rank must be a number >= 0 or 'hostname', got '", value, "'"));
    }
    return rank;
  }
  const size_t dash = hostname.rfind('-');
  const std::string ordinal = dash == std::string::npos ? "" : hostname.substr(dash + 1);
  if (ordinal.empty() || !std::all_of(ordinal.begin(), ordinal.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(ordinal, &rank)) {
    return absl::InvalidArgumentError(absl::StrCat("dist: rank 'hostname' needs a name ending in -<ordinal> (a ",
                                                   "StatefulSet pod), got '", hostname, "'"));
  }
  return rank;
}

absl::Status Validate(const GroupOptions& o) {
  if (o.world_size < 1) return absl::InvalidArgumentError("dist: world_size must be >= 1");
  if (o.rank < 0 || o.rank >= o.world_size) {
    return absl::InvalidArgumentError(absl::StrCat("dist: rank ", o.rank, " is outside 0..", o.world_size - 1));
  }
  if (o.master_port < 1 || o.master_port > 65535) return absl::InvalidArgumentError("dist: master_port in 1..65535");
  if (o.master_host.empty()) return absl::InvalidArgumentError("dist: master_host is empty");
  if (o.timeout.count() <= 0) return absl::InvalidArgumentError("dist: timeout must be > 0");
  return absl::OkStatus();
}

ProcessGroup::ProcessGroup(int rank, int world_size, std::unique_ptr<Impl> impl)
    : rank_(rank), world_size_(world_size), impl_(std::move(impl)) {}

ProcessGroup::~ProcessGroup() = default;

absl::StatusOr<std::unique_ptr<ProcessGroup>> ProcessGroup::Create(const GroupOptions& o) {
  if (absl::Status s = Validate(o); !s.ok()) return s;
  if (absl::Status s = BackendBuilt(o.backend); !s.ok()) return s;
  if (o.backend == Backend::kNccl && !torch::cuda::is_available()) {
    return absl::FailedPreconditionError("dist: nccl needs a CUDA device");
  }
  auto impl = std::make_unique<Impl>();
  try {
    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<std::uint16_t>(o.master_port);
    store_options.isServer = o.rank == 0;
    store_options.numWorkers = static_cast<std::size_t>(o.world_size);
    store_options.waitWorkers = true;
    store_options.timeout = o.timeout;
    impl->store = c10::make_intrusive<c10d::TCPStore>(o.master_host, store_options);
    impl->group = CreateCollectiveGroup(o.backend, impl->store, o.rank, o.world_size, o.timeout, o.master_host);
    if (o.backend == Backend::kNccl) {
      impl->device = at::Device(
          at::kCUDA, static_cast<c10::DeviceIndex>(o.rank % std::max<int64_t>(1, torch::cuda::device_count())));
    }
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("dist: rank ", o.rank, " of ", o.world_size, " could not join ",
                                               o.master_host, ":", o.master_port, ": ", e.what()));
  }
  return std::unique_ptr<ProcessGroup>(new ProcessGroup(o.rank, o.world_size, std::move(impl)));
}

absl::Status ProcessGroup::AllReduce(std::vector<at::Tensor>& tensors, ReduceOp op) {
  if (world_size_ == 1 || tensors.empty()) return absl::OkStatus();
  // c10d reads a vector of tensors as one tensor per local device, so several tensors travel as one
  // flat buffer (one collective); mixed dtypes go one by one.
  bool same_dtype = true;
  for (const auto& t : tensors) same_dtype = same_dtype && t.scalar_type() == tensors[0].scalar_type();
  if (!same_dtype) {
    for (auto& t : tensors) {
      std::vector<at::Tensor> one = {t};
      if (absl::Status s = AllReduce(one, op); !s.ok()) return s;
    }
    return absl::OkStatus();
  }
  try {
    std::vector<at::Tensor> flat;
    for (const auto& t : tensors) flat.push_back(t.reshape(-1).to(impl_->device));
    std::vector<at::Tensor> buffer = {flat.size() == 1 ? flat[0].clone() : torch::cat(flat)};
    c10d::AllreduceOptions options;
    options.reduceOp = ToC10d(op);
    impl_->group->allreduce(buffer, options)->wait();
    int64_t offset = 0;
    for (auto& t : tensors) {
      t.copy_(buffer[0].narrow(0, offset, t.numel()).view(t.sizes()));
      offset += t.numel();
    }
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("dist: all-reduce on rank ", rank_, ": ", e.what()));
  }
  return absl::OkStatus();
}

absl::Status ProcessGroup::Broadcast(at::Tensor& tensor, int root) {
  if (world_size_ == 1) return absl::OkStatus();
  if (root < 0 || root >= world_size_) return absl::InvalidArgumentError("dist: broadcast root out of range");
  try {
    std::vector<at::Tensor> staged = {tensor.device() == impl_->device ? tensor : tensor.to(impl_->device)};
    c10d::BroadcastOptions options;
    options.rootRank = root;
    impl_->group->broadcast(staged, options)->wait();
    if (!staged[0].is_same(tensor)) tensor.copy_(staged[0]);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("dist: broadcast on rank ", rank_, ": ", e.what()));
  }
  return absl::OkStatus();
}

absl::Status ProcessGroup::BroadcastBytes(std::string* bytes, int root) {
  auto size = torch::tensor({static_cast<int64_t>(rank_ == root ? bytes->size() : 0)}, torch::kInt64);
  if (absl::Status s = Broadcast(size, root); !s.ok()) return s;
  const int64_t n = size.item<int64_t>();
  if (n < 0) return absl::DataLossError("dist: negative byte count in broadcast");
  auto buffer = torch::empty({n}, torch::kUInt8);
  if (rank_ == root && n > 0) std::memcpy(buffer.data_ptr<uint8_t>(), bytes->data(), static_cast<size_t>(n));
  if (n > 0) {
    if (absl::Status s = Broadcast(buffer, root); !s.ok()) return s;
  }
  if (rank_ != root) bytes->assign(reinterpret_cast<const char*>(buffer.data_ptr<uint8_t>()), static_cast<size_t>(n));
  return absl::OkStatus();
}

absl::Status ProcessGroup::Barrier() {
  if (world_size_ == 1) return absl::OkStatus();
  try {
    impl_->group->barrier()->wait();
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("dist: barrier on rank ", rank_, ": ", e.what()));
  }
  return absl::OkStatus();
}

absl::Status ProcessGroup::AllGather(const at::Tensor& input, at::Tensor& output) {
  const int64_t n = input.numel();
  if (output.numel() != n * world_size_) {
    return absl::InvalidArgumentError(absl::StrCat("dist: all-gather of ", n, " elements per rank needs an output of ",
                                                   n * world_size_, ", got ", output.numel()));
  }
  if (world_size_ == 1) {
    if (!input.is_same(output)) output.view(-1).copy_(input.view(-1));
    return absl::OkStatus();
  }
  try {
    // A copy of the input: it may alias the output, and the backend wants it on its device.
    std::vector<at::Tensor> in = {input.reshape(-1).to(impl_->device, /*non_blocking=*/false, /*copy=*/true)};
    at::Tensor staged = output.device() == impl_->device ? output.view(-1) : output.view(-1).to(impl_->device);
    std::vector<std::vector<at::Tensor>> out(1);
    for (int r = 0; r < world_size_; ++r) out[0].push_back(staged.narrow(0, r * n, n));
    impl_->group->allgather(out, in)->wait();
    if (!staged.is_same(output.view(-1))) output.view(-1).copy_(staged);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("dist: all-gather on rank ", rank_, ": ", e.what()));
  }
  return absl::OkStatus();
}

absl::Status ProcessGroup::ReduceScatter(const at::Tensor& input, at::Tensor& output) {
  const int64_t n = output.numel();
  if (input.numel() != n * world_size_) {
    return absl::InvalidArgumentError(absl::StrCat("dist: reduce-scatter into ", n, " elements needs an input of ",
                                                   n * world_size_, ", got ", input.numel()));
  }
  if (world_size_ == 1) {
    output.view(-1).copy_(input.view(-1));
    return absl::OkStatus();
  }
  try {
#if TORCH_VERSION_MAJOR >= 2
    if (native_reduce_scatter_) {
      at::Tensor flat = input.reshape(-1).to(impl_->device);
      try {
        std::vector<at::Tensor> out = {output.device() == impl_->device ? output.view(-1) : output.view(-1).to(impl_->device)};
        std::vector<std::vector<at::Tensor>> in(1);
        for (int r = 0; r < world_size_; ++r) in[0].push_back(flat.narrow(0, r * n, n));
        impl_->group->reduce_scatter(out, in)->wait();
        if (!out[0].is_same(output.view(-1))) output.view(-1).copy_(out[0]);
        return absl::OkStatus();
      } catch (const c10::Error& e) {
        // "does not support reduce_scatter": thrown before any communication, on every rank alike.
        if (std::string(e.what()).find("support") == std::string::npos) throw;
        native_reduce_scatter_ = false;
      }
    }
#endif
    // LibTorch 1.13's Gloo has no reduce_scatter: one reduce per rank, of that rank's chunk, to it (each
    // rank sends every chunk once, as a reduce-scatter does, instead of the whole input twice in an
    // all-reduce). Copies: a reduce may use the non-root buffers as scratch.
    at::Tensor flat = input.reshape(-1);
    for (int r = 0; r < world_size_; ++r) {
      std::vector<at::Tensor> chunk = {flat.narrow(0, r * n, n).to(impl_->device, /*non_blocking=*/false, /*copy=*/true)};
      c10d::ReduceOptions options;
      options.rootRank = r;
      options.reduceOp = c10d::ReduceOp::SUM;
      impl_->group->reduce(chunk, options)->wait();
      if (r == rank_) output.view(-1).copy_(chunk[0]);
    }
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("dist: reduce-scatter on rank ", rank_, ": ", e.what()));
  }
  return absl::OkStatus();
}

absl::StatusOr<PendingCollective> ProcessGroup::ReduceAsync(const at::Tensor& tensor, int root) {
  if (root < 0 || root >= world_size_) return absl::InvalidArgumentError("dist: reduce root out of range");
  if (!tensor.is_contiguous()) return absl::InvalidArgumentError("dist: async reduce needs a contiguous tensor");
  PendingCollective pending;
  pending.impl_ = std::make_unique<PendingCollective::Impl>();
  pending.impl_->rank = rank_;
  if (world_size_ == 1) return pending;
  try {
    const bool here = tensor.device() == impl_->device;
    pending.impl_->staged = here ? tensor : tensor.to(impl_->device);
    if (!here && rank_ == root) pending.impl_->target = tensor;
    std::vector<at::Tensor> buffer = {pending.impl_->staged};
    c10d::ReduceOptions options;
    options.rootRank = root;
    options.reduceOp = c10d::ReduceOp::SUM;
    pending.impl_->work = impl_->group->reduce(buffer, options);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("dist: starting a reduce on rank ", rank_, ": ", e.what()));
  }
  return pending;
}

absl::StatusOr<int64_t> ProcessGroup::SumOverRanks(int64_t value) {
  std::vector<at::Tensor> t = {torch::tensor({value}, torch::kInt64)};
  if (absl::Status s = AllReduce(t); !s.ok()) return s;
  return t[0].item<int64_t>();
}

absl::Status AllReduceGradients(ProcessGroup& group, const std::vector<at::Tensor>& params, int64_t bucket_bytes) {
  if (group.world_size() == 1) return absl::OkStatus();
  std::vector<at::Tensor> trained;  // frozen parameters have no gradient to sum
  for (const auto& p : params) {
    if (!p.requires_grad()) continue;
    if (!p.grad().defined()) const_cast<at::Tensor&>(p).mutable_grad() = torch::zeros_like(p);
    trained.push_back(p);
  }
  // Buckets of same-dtype, same-device gradients: one collective each.
  size_t i = 0;
  while (i < trained.size()) {
    std::vector<at::Tensor> bucket = {trained[i].grad()};
    int64_t bytes = trained[i].grad().nbytes();
    size_t j = i + 1;
    for (; j < trained.size(); ++j) {
      const at::Tensor& g = trained[j].grad();
      if (g.scalar_type() != bucket[0].scalar_type() || g.device() != bucket[0].device() ||
          bytes + static_cast<int64_t>(g.nbytes()) > bucket_bytes) {
        break;
      }
      bucket.push_back(g);
      bytes += static_cast<int64_t>(g.nbytes());
    }
    if (absl::Status s = group.AllReduce(bucket); !s.ok()) return s;
    i = j;
  }
  return absl::OkStatus();
}

std::vector<size_t> RankShare(const std::vector<size_t>& order, int rank, int world_size) {
  std::vector<size_t> share;
  for (size_t k = static_cast<size_t>(rank); k < order.size(); k += static_cast<size_t>(std::max(1, world_size))) {
    share.push_back(order[k]);
  }
  return share;
}

}  // namespace r1r::dist
