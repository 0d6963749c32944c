// Decode steps of fixed shapes, replayed from CUDA graphs (GenerateOptions::cuda_graphs).
//
// A decode step of a small batch is hundreds of small kernels; on a GPU whose host launches them
// slower than the GPU runs them, the host sets the pace. A CUDA graph launches the whole step at once,
// but it replays fixed shapes at fixed addresses. So each step runs in a decode window of the slot
// cache (KvCache::SetDecodeWindow): the active rows rounded up to a power of two and the attended
// length rounded up to a multiple of `span_step`, with the ids copied into a buffer of that shape.
// The first step of each shape runs eagerly (that is the step's result) and is then captured; the
// following steps of that shape replay the capture. Graphs are dropped when the cache is reallocated.
//
// On a CPU model the same windowed steps run eagerly, every time: the shapes, masks and buffers are
// the same as on the GPU, so CPU tests check everything but the capture itself.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "absl/status/statusor.h"
#include "common/model/kv_cache.h"
#include "common/model/model.h"

namespace r1r::model {

// A captured sequence of kernels (CUDA builds only; see decode_graphs_cuda.cc).
class CapturedGraph {
 public:
  virtual ~CapturedGraph() = default;
  virtual void Replay() = 0;
};

// Captures what `body` launches on `device` into a graph sharing the memory pool `pool` ({0, 0}: a
// new pool, whose id is stored there). Runs `body` once eagerly first, on the capture stream (lazy
// initialisation must not happen inside a capture). One capture at a time per process; after a
// failed one, every later call fails too. Defined in CUDA builds only (R1R_CUDA_GRAPHS).
absl::StatusOr<std::unique_ptr<CapturedGraph>> CaptureCudaGraph(at::Device device, std::pair<uint64_t, uint64_t>& pool,
                                                                const std::function<void()>& body);

class DecodeGraphs {
 public:
  DecodeGraphs(const Qwen2_5_VL& model, int64_t span_step);
  ~DecodeGraphs();
  DecodeGraphs(const DecodeGraphs&) = delete;
  DecodeGraphs& operator=(const DecodeGraphs&) = delete;

  // One decode step of the active rows of a slot cache, row r fed ids[r]: the last hidden states
  // [active_rows, hidden_size] (a copy, so a later replay cannot overwrite them). Advances the cache.
  at::Tensor Step(KvCache& cache, const std::vector<int64_t>& ids);

  // Step shapes met so far (again after the cache was reallocated), how many of them were captured
  // (0 on CPU, or where a capture failed and the shape runs eagerly), and the seconds the captures
  // took (each a warm-up step, the capture and instantiating the graph).
  int64_t shapes() const { return shapes_; }
  int64_t captured() const { return captured_; }
  double capture_seconds() const { return capture_seconds_; }

  // The window rows for `active` rows of a cache with `slots` slots: the next power of two, at most
  // `slots`. The window span for a longest row of `length`: the next multiple of span_step above it,
  // at most `capacity`.
  static int64_t WindowRows(int64_t active, int64_t slots);
  static int64_t WindowSpan(int64_t length, int64_t span_step, int64_t capacity);

 private:
  struct Graph {
    at::Tensor row_index;                  // arange(rows), read by the captured Append
    at::Tensor ids;                        // [rows, 1] input buffer
    at::Tensor hidden;                     // [rows, hidden_size] output of the eager run or the capture
    std::unique_ptr<CapturedGraph> graph;  // null: runs eagerly
  };
  Graph& Prepare(int64_t rows, int64_t span);

  const Qwen2_5_VL& model_;
  int64_t span_step_;
  uint64_t cache_allocation_ = 0;                        // the cache allocation the graphs were captured against
  std::map<std::pair<int64_t, int64_t>, Graph> graphs_;  // by (rows, span)
  std::pair<uint64_t, uint64_t> pool_{0, 0};             // the memory pool the captures share (CUDA)
  int64_t shapes_ = 0, captured_ = 0;
  double capture_seconds_ = 0;
};

}  // namespace r1r::model
