#include "common/train/memory_meter.h"

#include <c10/core/CPUAllocator.h>
#include <torch/version.h>

#include <cstring>

#include <atomic>
#include <mutex>
#include <unordered_map>

namespace r1r::train {
namespace {

std::atomic<int64_t> g_in_use{0};
std::atomic<int64_t> g_peak{0};

struct Allocation {
  int64_t bytes;
  at::DeleterFnPtr inner;
};
// Every live allocation by address: raw_allocate() callers need the context to be the data pointer.
std::mutex g_mu;
std::unordered_map<void*, Allocation>* g_live = new std::unordered_map<void*, Allocation>();

void Release(void* ptr) {
  Allocation a{0, nullptr};
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_live->find(ptr);
    if (it == g_live->end()) return;
    a = it->second;
    g_live->erase(it);
  }
  g_in_use.fetch_sub(a.bytes);
  if (a.inner) a.inner(ptr);
}

class CountingAllocator final : public at::Allocator {
 public:
  explicit CountingAllocator(at::Allocator* inner) : inner_(inner) {}
  // LibTorch 2.3 made allocate non-const and added copy_data.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
  at::DataPtr allocate(size_t n) override { return Count(n); }
  void copy_data(void* dest, const void* src, std::size_t count) const override { std::memcpy(dest, src, count); }
#else
  at::DataPtr allocate(size_t n) const override { return Count(n); }
#endif
  at::DeleterFnPtr raw_deleter() const override { return &Release; }

 private:
  at::DataPtr Count(size_t n) const {
    at::DataPtr data = inner_->allocate(n);
    void* ptr = data.get();
    const at::Device device = data.device();
    // The default CPU allocator's context is its data pointer, freed by a plain deleter.
    const at::DeleterFnPtr inner = data.get_deleter();
    if (data.get_context() != ptr || inner == nullptr) return data;  // (not countable: left as it is)
    data.release_context();
    {
      std::lock_guard<std::mutex> lock(g_mu);
      (*g_live)[ptr] = Allocation{static_cast<int64_t>(n), inner};
    }
    const int64_t now = g_in_use.fetch_add(static_cast<int64_t>(n)) + static_cast<int64_t>(n);
    int64_t peak = g_peak.load();
    while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {
    }
    return at::DataPtr(ptr, ptr, &Release, device);
  }
  at::Allocator* inner_;
};

}  // namespace

void InstallCpuMemoryMeter() {
  static CountingAllocator* meter = [] {
    auto* m = new CountingAllocator(c10::GetDefaultCPUAllocator());
    c10::SetCPUAllocator(m, /*priority=*/100);
    return m;
  }();
  (void)meter;
}

int64_t CpuBytesInUse() { return g_in_use.load(); }
int64_t CpuPeakBytes() { return g_peak.load(); }
void ResetCpuPeakBytes() { g_peak.store(g_in_use.load()); }

}  // namespace r1r::train
