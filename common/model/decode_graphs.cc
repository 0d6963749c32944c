#include "common/model/decode_graphs.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <string>

#include "spdlog/spdlog.h"

namespace r1r::model {

namespace {

// Clears the decode window however the step ends.
class WindowGuard {
 public:
  WindowGuard(KvCache& cache, int64_t rows, int64_t span, const at::Tensor& row_index) : cache_(cache) {
    cache_.SetDecodeWindow(rows, span, row_index);
  }
  ~WindowGuard() { cache_.SetDecodeWindow(0, 0, at::Tensor()); }
  WindowGuard(const WindowGuard&) = delete;
  WindowGuard& operator=(const WindowGuard&) = delete;

 private:
  KvCache& cache_;
};

}  // namespace

DecodeGraphs::DecodeGraphs(const Qwen2_5_VL& model, int64_t span_step)
    : model_(model), span_step_(std::max<int64_t>(1, span_step)) {}

DecodeGraphs::~DecodeGraphs() = default;

int64_t DecodeGraphs::WindowRows(int64_t active, int64_t slots) {
  int64_t rows = 1;
  while (rows < active) rows *= 2;
  return std::min(rows, slots);
}

int64_t DecodeGraphs::WindowSpan(int64_t length, int64_t span_step, int64_t capacity) {
  return std::min((length / span_step + 1) * span_step, capacity);
}

DecodeGraphs::Graph& DecodeGraphs::Prepare(int64_t rows, int64_t span) {
  const at::Device device = model_.options().device;
  Graph& g = graphs_[{rows, span}];
  ++shapes_;
  g.row_index = torch::arange(rows, torch::dtype(torch::kLong).device(device));
  g.ids = torch::zeros({rows, 1}, torch::dtype(torch::kLong).device(device));
  return g;
}

at::Tensor DecodeGraphs::Step(KvCache& cache, const std::vector<int64_t>& ids) {
  const int64_t active = cache.active_rows();
  TORCH_CHECK(cache.slots() && active > 0 && static_cast<int64_t>(ids.size()) == active,
              "DecodeGraphs::Step: ", ids.size(), " ids for ", active, " active rows of a slot cache");
  if (cache.allocation_id() != cache_allocation_) {  // new cache tensors: the captures read the old ones
    graphs_.clear();
    pool_ = {0, 0};
    cache_allocation_ = cache.allocation_id();
  }
  const int64_t rows = WindowRows(active, cache.num_slots());
  const int64_t span = WindowSpan(cache.length(), span_step_, cache.capacity());
  auto found = graphs_.find({rows, span});
  const bool fresh = found == graphs_.end();
  Graph& g = fresh ? Prepare(rows, span) : found->second;

  // The window's rows past the active ones feed token 0; their results are never read.
  at::Tensor host_ids = torch::zeros({rows, 1}, torch::kLong);
  std::copy(ids.begin(), ids.end(), host_ids.data_ptr<int64_t>());
  g.ids.copy_(host_ids);
  at::Tensor hidden;
  {
    WindowGuard window(cache, rows, span, g.row_index);
    if (g.graph != nullptr) {
      g.graph->Replay();
      hidden = g.hidden;
    } else {
      hidden = model_.DecodeSlots(cache, g.ids);
#if R1R_CUDA_GRAPHS
      if (fresh && hidden.is_cuda()) {
        // Re-running the step is harmless: it writes the same entries at the same (unadvanced) lengths.
        const auto start = std::chrono::steady_clock::now();
        auto graph = CaptureCudaGraph(hidden.device(), pool_, [&] { g.hidden = model_.DecodeSlots(cache, g.ids); });
        capture_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (graph.ok()) {
          g.graph = *std::move(graph);
          ++captured_;
        } else {
          g.hidden = at::Tensor();
          spdlog::error("decode steps of {} rows over {} positions run eagerly: {}", rows, span,
                        std::string(graph.status().message()));
        }
      }
#endif
    }
  }
  cache.Advance(1);
  // A copy: the captures share one memory pool, so a later graph's replay may reuse this output's
  // memory for its intermediates.
  return hidden.narrow(0, 0, active).clone();
}

}  // namespace r1r::model
