// Both ends of the weight stream (learner StreamWeights -> actor LoadWeights): a model's tensors go
// out as chunks of at most `chunk_bytes`, each naming its tensor, dtype, shape and byte offset, then a
// trailer with the CRC32C and byte count of everything before it. The receiver checks every header
// (shape bounds, offsets), the trailer, and that the weights are finite. No gRPC here: the learner
// copies each WeightChunkView into a v1::WeightChunk, the actor copies each v1::WeightChunk into one.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include "common/model/safetensors.h"
#include "common/train/weight_codec.h"

namespace r1r::train {

inline constexpr int kDefaultWeightChunkBytes = 1 << 20;
inline constexpr int kMinWeightChunkBytes = 64 << 10;
inline constexpr int kMaxWeightChunkBytes = 4 << 20;
// One streamed tensor may declare at most this many bytes (the largest of a 72B model is ~2.5 GB):
// a header with a huge shape must not make the receiver reserve memory for it.
inline constexpr int64_t kMaxStreamedTensorBytes = int64_t{8} << 30;

// One message of the stream. A tensor chunk has a name; the trailer has end_of_stream set and only
// the checksum and byte count. `data` points into memory valid during the callback only.
struct WeightChunkView {
  int64_t version = 0;
  std::string tensor_name;
  std::string dtype;
  std::vector<int64_t> shape;
  int64_t offset = 0;
  const char* data = nullptr;
  size_t size = 0;
  bool last_chunk_of_tensor = false;
  bool end_of_stream = false;
  uint32_t crc32c = 0;
  int64_t total_bytes = 0;
};

// The chunk size a request asks for (0 = the default); INVALID_ARGUMENT naming `chunk_bytes` outside
// 64 KiB..4 MiB.
absl::StatusOr<int> WeightChunkBytes(int64_t requested);

// Sends every tensor (model::ExportWeights: they alias the parameters, nothing is copied whole) as
// version `version`, then the trailer. Stops at the first error `sink` returns (a cancelled or broken
// stream) and returns it. Returns the tensor bytes sent.
absl::StatusOr<int64_t> SendWeights(const model::TensorMap& tensors, int64_t version, int chunk_bytes,
                                    const std::function<absl::Status(const WeightChunkView&)>& sink);

// The receiving end of one stream attempt. Add every chunk in order; the first problem is kept
// and later chunks are only counted, so the caller can drain the stream; Finish says whether the
// stream was whole (trailer seen and matching) and its weights finite.
class WeightStreamReceiver {
 public:
  // Chunks of a version below `min_version` are refused (FAILED_PRECONDITION).
  explicit WeightStreamReceiver(int64_t min_version);

  void Add(const WeightChunkView& chunk);
  // The first problem so far (OK while the stream looks whole).
  const absl::Status& status() const { return status_; }
  // The version the chunks carried (-1 before the first tensor chunk).
  int64_t version() const { return version_; }
  // Tensor bytes received so far.
  int64_t bytes() const { return total_; }
  // DATA_LOSS without a trailer, with non-finite weights or an incomplete tensor; the tensors once.
  absl::StatusOr<model::TensorMap> Finish();

 private:
  const int64_t min_version_;
  TensorAssembler assembler_;
  absl::Status status_;
  uint32_t crc_ = 0;
  int64_t total_ = 0;
  int64_t version_ = -1;
  bool ended_ = false;
  std::string current_;
};

// OK when every floating-point tensor holds only finite values (a stream whose CRC matches can still
// carry NaN weights, which would make every rollout garbage); DATA_LOSS naming the tensor otherwise.
absl::Status CheckFinite(const model::TensorMap& tensors);

}  // namespace r1r::train
