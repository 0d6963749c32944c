// The weights of one policy version as one flat byte buffer, the unit the sync group broadcasts: a
// manifest (policy version, serial, CRC32C, and each tensor's name, dtype, shape and byte offset) plus
// the buffer. The serial names the weights themselves: the policy version stays 0 through SFT while
// the weights change, so receivers match on the serial, which grows with every change.
// The learner copies its parameters into a snapshot (its only pause: training goes on while the copy
// is broadcast); an actor allocates one from the manifest it receives, fills the buffer, verifies it
// and loads the tensors, which are views into the buffer (no second copy).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>
#include <absl/status/status.h>
#include <absl/status/statusor.h>

namespace r1r::dist {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

struct TensorSlot {
  std::string name;
  std::string dtype;  // F32 | BF16 | F16 | F64 | I64 | I32 | U8
  std::vector<int64_t> shape;
  int64_t offset = 0;  // into the buffer, a multiple of kSlotAlignment
  int64_t bytes = 0;
};

// Offsets are aligned so that every slot can be viewed as its dtype in place.
inline constexpr int64_t kSlotAlignment = 64;
// A manifest may declare at most this many bytes in all (the largest published Qwen2.5-VL, 72B in
// bf16, is ~150 GB): a corrupt header must not make an actor reserve memory for it.
inline constexpr int64_t kMaxSnapshotBytes = int64_t{1} << 40;

class WeightSnapshot {
 public:
  // Copies `tensors` (in this order; all on one device) into a buffer on that device and checksums
  // it. Errors name the tensor. The buffer of `reuse` (nobody may use it any more) is taken when it has
  // the same size and device: a fresh buffer of a model's size costs its page faults on every sync.
  static absl::StatusOr<std::shared_ptr<WeightSnapshot>> Copy(const NamedTensors& tensors, int64_t version,
                                                              int64_t serial,
                                                              std::shared_ptr<WeightSnapshot> reuse = nullptr);
  // An unfilled buffer laid out by `manifest` (from Manifest()) on `device` ("cpu", "cuda:N"), `reuse`'s
  // when it fits. INVALID_ARGUMENT naming the manifest's bad field.
  static absl::StatusOr<std::shared_ptr<WeightSnapshot>> Allocate(const std::string& manifest,
                                                                  const std::string& device,
                                                                  std::shared_ptr<WeightSnapshot> reuse = nullptr);

  std::string Manifest() const;
  int64_t version() const { return version_; }
  int64_t serial() const { return serial_; }
  uint32_t crc32c() const { return crc32c_; }  // over the slots' bytes in order, padding excluded
  int64_t tensor_bytes() const { return tensor_bytes_; }
  const std::vector<TensorSlot>& slots() const { return slots_; }
  // The flat uint8 buffer (slots plus alignment padding).
  at::Tensor& buffer() { return buffer_; }
  // DATA_LOSS when the buffer's CRC32C differs from the manifest's (a torn or corrupted transfer).
  absl::Status Verify() const;
  // The same check in steps, as buckets arrive: continues `crc` over the slots' bytes within buffer
  // bytes [begin, end) (ranges given in order, covering the buffer once); Verify(crc) at the end.
  uint32_t ContinueCrc32c(uint32_t crc, int64_t begin, int64_t end) const;
  absl::Status Verify(uint32_t crc) const;

  // What a receiver learns from the buffer while it arrives: the CRC32C so far and the first tensor
  // holding NaN or an infinity.
  struct Check {
    uint32_t crc = 0;
    int64_t nonfinite_slot = -1;  // index into slots(), -1 while none
  };
  // ContinueCrc32c fused with the finite check of the floating-point slots: one read of each piece of
  // [begin, end) while it is in cache (same order and coverage rules). An element split between two
  // ranges is checked with the second.
  void Continue(Check* check, int64_t begin, int64_t end) const;
  // DATA_LOSS for a CRC32C mismatch, then for a tensor with NaN or infinite values (naming it): such a
  // snapshot must never be loaded.
  absl::Status Verify(const Check& check) const;
  // The tensors as views into the buffer, in manifest order.
  NamedTensors Tensors() const;

 private:
  WeightSnapshot() = default;
  uint32_t ComputeCrc32c() const;
  void Scan(Check* check, int64_t begin, int64_t end, bool finite) const;

  int64_t version_ = 0;
  int64_t serial_ = 0;
  uint32_t crc32c_ = 0;
  int64_t tensor_bytes_ = 0;
  std::vector<TensorSlot> slots_;
  at::Tensor buffer_;
};

}  // namespace r1r::dist
