#include "common/train/weight_stream.h"

#include <algorithm>

#include <absl/strings/str_cat.h>
#include <torch/torch.h>

namespace r1r::train {
namespace {

// Bytes per element of a wire dtype (weight_codec's names), 0 for an unknown one.
int64_t ElementBytes(const std::string& dtype) {
  if (dtype == "F32") return 4;
  if (dtype == "BF16" || dtype == "F16") return 2;
  return 0;
}

// Bytes a tensor of `shape` and `dtype` declares, or -1 when the shape is negative or the size is
// over kMaxStreamedTensorBytes (checked before multiplying, so it cannot overflow).
int64_t DeclaredBytes(const std::string& dtype, const std::vector<int64_t>& shape) {
  int64_t n = std::max<int64_t>(ElementBytes(dtype), 1);  // an unknown dtype is refused by the assembler
  for (int64_t d : shape) {
    if (d < 0 || (d > 0 && n > kMaxStreamedTensorBytes / d)) return -1;
    n *= d;
  }
  return n;
}

}  // namespace

absl::StatusOr<int> WeightChunkBytes(int64_t requested) {
  if (requested == 0) return kDefaultWeightChunkBytes;
  if (requested < kMinWeightChunkBytes || requested > kMaxWeightChunkBytes) {
    return absl::InvalidArgumentError(absl::StrCat("chunk_bytes: need 64 KiB..4 MiB (or 0), got ", requested));
  }
  return static_cast<int>(requested);
}

absl::StatusOr<int64_t> SendWeights(const model::TensorMap& tensors, int64_t version, int chunk_bytes,
                                    const std::function<absl::Status(const WeightChunkView&)>& sink) {
  if (chunk_bytes < 1) return absl::InvalidArgumentError(absl::StrCat("chunk_bytes: ", chunk_bytes));
  uint32_t crc = 0;
  int64_t total = 0;
  for (const auto& [name, tensor] : tensors) {
    // One tensor at a time, so a GPU model never holds a second full copy in host memory.
    auto view = ViewTensor(name, tensor);
    if (!view.ok()) return view.status();
    size_t offset = 0;
    do {
      const size_t n = std::min(static_cast<size_t>(chunk_bytes), view->size - offset);
      WeightChunkView chunk;
      chunk.version = version;
      chunk.tensor_name = view->name;
      chunk.dtype = view->dtype;
      chunk.shape = view->shape;
      chunk.offset = static_cast<int64_t>(offset);
      chunk.data = view->data + offset;
      chunk.size = n;
      crc = Crc32c(crc, chunk.data, n);
      offset += n;
      chunk.last_chunk_of_tensor = offset == view->size;
      if (absl::Status s = sink(chunk); !s.ok()) return s;
    } while (offset < view->size);
    total += static_cast<int64_t>(view->size);
  }
  WeightChunkView trailer;
  trailer.version = version;
  trailer.end_of_stream = true;
  trailer.crc32c = crc;
  trailer.total_bytes = total;
  if (absl::Status s = sink(trailer); !s.ok()) return s;
  return total;
}

WeightStreamReceiver::WeightStreamReceiver(int64_t min_version) : min_version_(min_version) {}

void WeightStreamReceiver::Add(const WeightChunkView& chunk) {
  if (!status_.ok() || ended_) return;  // the caller drains; the first problem is the one reported
  if (chunk.end_of_stream) {
    ended_ = true;
    if (chunk.total_bytes != total_) {
      status_ = absl::DataLossError(
          absl::StrCat("weight stream: ", total_, " bytes received, trailer says ", chunk.total_bytes));
    } else if (chunk.crc32c != crc_) {
      status_ = absl::DataLossError(
          absl::StrCat("weight stream: crc32c mismatch (received ", crc_, ", trailer says ", chunk.crc32c, ")"));
    }
    return;
  }
  if (chunk.version < min_version_) {
    status_ = absl::FailedPreconditionError(absl::StrCat("learner sent version ", chunk.version));
    return;
  }
  version_ = chunk.version;
  if (chunk.tensor_name != current_) {
    current_ = chunk.tensor_name;
    if (const int64_t declared = DeclaredBytes(chunk.dtype, chunk.shape);
        declared < 0 || declared > kMaxStreamedTensorBytes) {
      status_ = absl::DataLossError(absl::StrCat("weight stream: tensor ", current_.substr(0, 256),
                                                 " declares a shape over ", kMaxStreamedTensorBytes, " bytes"));
      return;
    }
    status_ = assembler_.Begin(current_, chunk.dtype, chunk.shape);
    if (!status_.ok()) return;
  }
  status_ = assembler_.Append(chunk.offset, chunk.data, chunk.size);
  crc_ = Crc32c(crc_, chunk.data, chunk.size);
  total_ += static_cast<int64_t>(chunk.size);
}

absl::StatusOr<model::TensorMap> WeightStreamReceiver::Finish() {
  if (!status_.ok()) return status_;
  if (!ended_) return absl::DataLossError("weight stream ended without its trailer");
  auto tensors = assembler_.Finish();
  if (!tensors.ok()) return tensors.status();
  if (absl::Status s = CheckFinite(*tensors); !s.ok()) return s;
  return tensors;
}

absl::Status CheckFinite(const model::TensorMap& tensors) {
  for (const auto& [name, t] : tensors) {
    if (!t.is_floating_point() || t.numel() == 0) continue;
    if (!torch::isfinite(t).all().item<bool>()) {
      return absl::DataLossError(absl::StrCat("weights: tensor ", name, " holds NaN or infinite values"));
    }
  }
  return absl::OkStatus();
}

}  // namespace r1r::train
