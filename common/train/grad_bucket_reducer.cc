#include "common/train/grad_bucket_reducer.h"

#include <torch/torch.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <algorithm>
#include <functional>
#include <mutex>
#include <optional>

#include <absl/strings/str_cat.h>

#include "common/dist/process_group.h"

namespace r1r::train {
namespace {

// The part of one parameter that falls into one bucket.
struct Piece {
  size_t bucket = 0;
  int64_t param_begin = 0;   // first element within the parameter
  int64_t bucket_begin = 0;  // where it lands in the bucket
  int64_t numel = 0;
  bool filled = false;  // its gradient arrived in this backward
  bool hooked = true;   // false: the parameter never gets a gradient (zeros)
};

struct Bucket {
  int64_t begin = 0, end = 0;  // flat elements [begin, end)
  int owner = 0;
  std::vector<size_t> pieces;
  size_t missing = 0;   // pieces not filled yet
  at::Tensor staging;   // fp32 [end - begin]; the reduce runs in place
  bool started = false;
  std::optional<dist::PendingCollective> pending;
};

}  // namespace

struct GradBucketReducer::State {
  dist::ProcessGroup* group = nullptr;
  std::vector<at::Tensor> params;
  int64_t shard = 0;
  std::vector<Bucket> buckets;                  // in the order they start: highest flat elements first
  std::vector<Piece> pieces;
  std::vector<std::vector<size_t>> param_pieces;  // piece indices of each parameter
  size_t next = 0;                              // the next bucket to start
  bool late = false;                            // a gradient arrived after its bucket left
  absl::Status error;                           // the first failure to start a reduce
  std::vector<std::pair<std::shared_ptr<torch::autograd::Node>, uintptr_t>> hooks;
  std::mutex mutex;  // hooks run on the autograd engine's thread; Finish on the caller's

  void ResetBackward() {
    for (Bucket& b : buckets) {
      b.staging = at::Tensor();
      b.started = false;
      b.pending.reset();
      b.missing = 0;
      for (size_t i : b.pieces) b.missing += pieces[i].hooked ? 1 : 0;
    }
    for (Piece& p : pieces) p.filled = false;
    next = 0;
    late = false;
    error = absl::OkStatus();
  }

  void Start(Bucket& b) {
    b.started = true;
    if (!error.ok()) return;
    try {
      if (!b.staging.defined()) {
        b.staging = torch::zeros({b.end - b.begin}, torch::TensorOptions().dtype(torch::kFloat).device(params[0].device()));
      } else {
        for (size_t i : b.pieces) {  // parameters without a gradient in this backward count as zeros
          if (!pieces[i].filled) b.staging.narrow(0, pieces[i].bucket_begin, pieces[i].numel).zero_();
        }
      }
      auto pending = group->ReduceAsync(b.staging, b.owner);
      if (!pending.ok()) {
        error = pending.status();
        return;
      }
      b.pending = std::move(*pending);
    } catch (const c10::Error& e) {
      error = absl::InternalError(absl::StrCat("starting a gradient bucket: ", e.what_without_backtrace()));
    }
  }

  // Starts the ready buckets at the front of the order (all of them when `force`).
  void StartReady(bool force) {
    while (next < buckets.size() && (force || buckets[next].missing == 0)) Start(buckets[next++]);
  }

  // The post hook of parameter `index`'s accumulator: its .grad holds this backward's gradient.
  void OnGradient(size_t index) {
    std::lock_guard<std::mutex> lock(mutex);
    at::Tensor& param = params[index];
    const std::vector<size_t>& mine = param_pieces[index];
    for (size_t i : mine) {
      if (buckets[pieces[i].bucket].started) {
        late = true;  // too late for the bucket: leave .grad to the synchronous path
        return;
      }
    }
    const at::Tensor grad = param.grad();
    try {
      torch::NoGradGuard no_grad;
      const at::Tensor flat = grad.defined() ? grad.reshape(-1) : at::Tensor();
      for (size_t i : mine) {
        Piece& p = pieces[i];
        Bucket& b = buckets[p.bucket];
        if (flat.defined()) {
          const at::Tensor part = flat.narrow(0, p.param_begin, p.numel);
          if (!b.staging.defined() && p.numel == b.end - b.begin && part.scalar_type() == torch::kFloat &&
              part.is_contiguous()) {
            b.staging = part;  // the whole bucket is this fp32 gradient: reduce it where it is
          } else {
            if (!b.staging.defined()) {
              b.staging = torch::empty({b.end - b.begin}, part.options().dtype(torch::kFloat));
            }
            at::Tensor slot = b.staging.narrow(0, p.bucket_begin, p.numel);
            p.filled ? slot.add_(part) : slot.copy_(part);
          }
        } else if (!p.filled && b.staging.defined()) {
          b.staging.narrow(0, p.bucket_begin, p.numel).zero_();
        }
        if (!p.filled) {
          p.filled = true;
          --b.missing;
        }
      }
    } catch (const c10::Error& e) {
      if (error.ok()) error = absl::InternalError(absl::StrCat("gradient bucket: ", e.what_without_backtrace()));
    }
    // The buckets hold it now (or a view of it): the full-size gradient need not outlive this hook.
    param.mutable_grad() = at::Tensor();
    StartReady(/*force=*/false);
  }
};

namespace {

struct PostAccumulateHook : torch::autograd::FunctionPostHook {
  explicit PostAccumulateHook(std::function<void()> on_gradient) : on_gradient(std::move(on_gradient)) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list& /*inputs*/) override {
    on_gradient();
    return outputs;
  }
  std::function<void()> on_gradient;
};

}  // namespace

GradBucketReducer::GradBucketReducer(std::unique_ptr<State> state) : state_(std::move(state)) {}

GradBucketReducer::~GradBucketReducer() {
  for (auto& [node, key] : state_->hooks) node->del_post_hook(key);
}

int64_t GradBucketReducer::bucket_count() const { return static_cast<int64_t>(state_->buckets.size()); }

absl::StatusOr<std::unique_ptr<GradBucketReducer>> GradBucketReducer::Create(const std::vector<at::Tensor>& params,
                                                                            const std::vector<int64_t>& offsets,
                                                                            int64_t shard, int64_t bucket_elements,
                                                                            dist::ProcessGroup* group) {
  if (group == nullptr) return absl::InvalidArgumentError("the gradient bucket reducer needs a process group");
  if (params.empty() || params.size() != offsets.size() || shard < 1 || bucket_elements < 1) {
    return absl::InvalidArgumentError("gradient bucket reducer: bad layout");
  }
  auto state = std::make_unique<State>();
  state->group = group;
  state->params = params;
  state->shard = shard;
  const int64_t numel = offsets.back() + params.back().numel();
  // Buckets from the top of the flat vector down, cut at shard boundaries and at bucket_elements.
  for (int64_t end = numel; end > 0;) {
    const int owner = static_cast<int>((end - 1) / shard);
    const int64_t begin = std::max<int64_t>(owner * shard, end - bucket_elements);
    state->buckets.push_back(Bucket{begin, end, owner});
    end = begin;
  }
  state->param_pieces.resize(params.size());
  for (size_t b = 0; b < state->buckets.size(); ++b) {
    Bucket& bucket = state->buckets[b];
    // The parameters overlapping [begin, end).
    auto it = std::upper_bound(offsets.begin(), offsets.end(), bucket.begin);
    for (size_t i = static_cast<size_t>(it - offsets.begin()) - 1; i < params.size() && offsets[i] < bucket.end; ++i) {
      const int64_t lo = std::max(bucket.begin, offsets[i]);
      const int64_t hi = std::min(bucket.end, offsets[i] + params[i].numel());
      if (hi <= lo) continue;
      state->param_pieces[i].push_back(state->pieces.size());
      bucket.pieces.push_back(state->pieces.size());
      state->pieces.push_back(Piece{b, lo - offsets[i], lo - bucket.begin, hi - lo});
    }
  }
  std::unique_ptr<GradBucketReducer> reducer(new GradBucketReducer(std::move(state)));
  State* s = reducer->state_.get();
  for (size_t i = 0; i < params.size(); ++i) {
    // The tensor holds its accumulator weakly: keeping it here keeps the hook on the one autograd uses.
    std::shared_ptr<torch::autograd::Node> node;
    if (params[i].requires_grad() && params[i].is_leaf()) node = torch::autograd::impl::grad_accumulator(params[i]);
    if (!node) {  // never gets a gradient: its pieces are zeros and nothing waits for them
      for (size_t p : s->param_pieces[i]) s->pieces[p].hooked = false;
      continue;
    }
    const uintptr_t key = node->add_post_hook(std::make_unique<PostAccumulateHook>([s, i] { s->OnGradient(i); }));
    s->hooks.emplace_back(std::move(node), key);
  }
  s->ResetBackward();
  return reducer;
}

absl::StatusOr<bool> GradBucketReducer::Finish(at::Tensor shard_accumulator) {
  State& s = *state_;
  absl::Status status;
  bool late = false;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    s.StartReady(/*force=*/true);
    status = s.error;
    const int rank = s.group->rank();
    for (Bucket& b : s.buckets) {
      if (!status.ok()) break;  // abandon the rest: each would wait out the timeout again
      if (b.pending) status = b.pending->Wait();
      if (status.ok() && b.owner == rank) {
        try {
          torch::NoGradGuard no_grad;
          shard_accumulator.narrow(0, b.begin - rank * s.shard, b.end - b.begin).add_(b.staging);
        } catch (const c10::Error& e) {
          status = absl::InternalError(absl::StrCat("adding a reduced bucket: ", e.what_without_backtrace()));
        }
      }
    }
    late = s.late;
    s.ResetBackward();
  }
  if (!status.ok()) return status;
  // One rank's late gradient makes every rank take the synchronous path for the rest.
  auto any_late = s.group->SumOverRanks(late ? 1 : 0);
  if (!any_late.ok()) return any_late.status();
  return *any_late > 0;
}

void GradBucketReducer::Reset() {
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->ResetBackward();
}

}  // namespace r1r::train
