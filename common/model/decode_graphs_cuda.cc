// CUDA graph capture for DecodeGraphs (compiled in CUDA builds only, R1R_CUDA_GRAPHS).
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/version.h>

#include <atomic>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "common/model/decode_graphs.h"

namespace r1r::model {

namespace {

class CudaGraph final : public CapturedGraph {
 public:
  void Replay() override { graph.replay(); }
  at::cuda::CUDAGraph graph;
};

// One capture at a time in the process: the actor runs generation calls in parallel, and two
// captures must not share a pool stream or interleave their allocator routing.
std::mutex capture_mu;
// After a failed capture, the allocator may still route allocations to the half-made graph (PyTorch
// before 2.12 throws from capture_end before it undoes that), so the graph is leaked and no further
// capture is tried in this process.
std::atomic<bool> captures_broken{false};

}  // namespace

absl::StatusOr<std::unique_ptr<CapturedGraph>> CaptureCudaGraph(at::Device device, std::pair<uint64_t, uint64_t>& pool,
                                                                const std::function<void()>& body) {
  std::lock_guard<std::mutex> lock(capture_mu);
  if (captures_broken) return absl::FailedPreconditionError("an earlier CUDA graph capture failed in this process");
  auto captured = std::make_unique<CudaGraph>();
  bool capturing = false;
  try {
    c10::cuda::CUDAGuard device_guard(device);
    // The capture stream must see everything the current stream queued before it.
    c10::cuda::getCurrentCUDAStream().synchronize();
    c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool();
    {
      c10::cuda::CUDAStreamGuard stream_guard(side);
      body();  // warm-up: lazy initialisation (cuBLAS handles, workspaces) outside the capture
      side.synchronize();
#if TORCH_VERSION_MAJOR >= 2
      // Thread-local capture: other threads (gRPC, metrics) may use CUDA meanwhile.
      captured->graph.capture_begin({pool.first, pool.second}, cudaStreamCaptureModeThreadLocal);
#else
      captured->graph.capture_begin({pool.first, pool.second});
#endif
      capturing = true;
      body();
      capturing = false;
      captured->graph.capture_end();
    }
    side.synchronize();
    const auto id = captured->graph.pool();
    pool = {id.first, id.second};
  } catch (const std::exception& e) {
    if (capturing) {
      try {
        captured->graph.capture_end();
      } catch (const std::exception&) {
        // Ending a broken capture fails too; the error returned below is the one that broke it.
      }
    }
    captures_broken = true;
    (void)captured.release();  // deliberately leaked: see captures_broken
    return absl::InternalError(absl::StrCat("CUDA graph capture failed: ", e.what()));
  }
  return captured;
}

}  // namespace r1r::model
