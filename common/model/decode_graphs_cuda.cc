// CUDA graph capture for DecodeGraphs (compiled in CUDA builds only).
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "absl/strings/str_cat.h"
#include "common/model/decode_graphs.h"

namespace r1r::model {

namespace {

class CudaGraph final : public CapturedGraph {
 public:
  void Replay() override { graph.replay(); }
  at::cuda::CUDAGraph graph;
};

}  // namespace

absl::StatusOr<std::unique_ptr<CapturedGraph>> CaptureCudaGraph(at::Device device,
                                                                 std::pair<uint64_t, uint64_t>& pool,
                                                                 const std::function<void()>& body) {
  auto captured = std::make_unique<CudaGraph>();
  try {
    c10::cuda::CUDAGuard device_guard(device);
    // The capture stream must see everything the current stream queued before it.
    c10::cuda::getCurrentCUDAStream().synchronize();
    c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool();
    {
      c10::cuda::CUDAStreamGuard stream_guard(side);
      body();  // warm-up: lazy initialisation (cuBLAS handles, workspaces) outside the capture
      side.synchronize();
      // Thread-local capture: other threads (gRPC, metrics) may use CUDA meanwhile.
      captured->graph.capture_begin({pool.first, pool.second}, cudaStreamCaptureModeThreadLocal);
      try {
        body();
      } catch (...) {
        try {
          captured->graph.capture_end();
        } catch (...) {
        }
        throw;
      }
      captured->graph.capture_end();
    }
    side.synchronize();
    const auto id = captured->graph.pool();
    pool = {id.first, id.second};
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("CUDA graph capture failed: ", e.what_without_backtrace()));
  }
  return captured;
}

}  // namespace r1r::model
