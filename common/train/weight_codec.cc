#include "common/train/weight_codec.h"

#include <torch/torch.h>

#include <cstring>

#include <absl/strings/str_cat.h>

#include "common/dist/crc32c.h"

namespace r1r::train {
namespace {

absl::StatusOr<std::string> DtypeName(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return std::string("F32");
    case at::kBFloat16: return std::string("BF16");
    case at::kHalf: return std::string("F16");
    default: return absl::InvalidArgumentError(absl::StrCat("unsupported dtype ", c10::toString(t)));
  }
}

absl::StatusOr<at::ScalarType> DtypeOf(const std::string& name) {
  if (name == "F32") return at::kFloat;
  if (name == "BF16") return at::kBFloat16;
  if (name == "F16") return at::kHalf;
  return absl::InvalidArgumentError(absl::StrCat("unknown dtype '", name, "'"));
}

}  // namespace

// One implementation for the stream's trailer and the broadcast's checksum (dist is the lower floor).
uint32_t Crc32c(uint32_t crc, const void* data, size_t size) { return dist::Crc32c(crc, data, size); }

absl::StatusOr<std::vector<WireTensor>> EncodeTensors(const model::TensorMap& tensors) {
  std::vector<WireTensor> out;
  out.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) {
    auto dtype = DtypeName(tensor.scalar_type());
    if (!dtype.ok()) return absl::InvalidArgumentError(absl::StrCat(name, ": ", dtype.status().message()));
    at::Tensor t = tensor.detach().to(at::kCPU).contiguous();
    WireTensor w;
    w.name = name;
    w.dtype = *dtype;
    w.shape.assign(t.sizes().begin(), t.sizes().end());
    w.bytes.assign(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
    out.push_back(std::move(w));
  }
  return out;
}

absl::StatusOr<model::TensorMap> DecodeTensors(const std::vector<WireTensor>& wire) {
  model::TensorMap out;
  for (const WireTensor& w : wire) {
    auto dtype = DtypeOf(w.dtype);
    if (!dtype.ok()) return absl::InvalidArgumentError(absl::StrCat(w.name, ": ", dtype.status().message()));
    // The shape's size is checked against the bytes before anything is allocated, without overflow.
    const auto available = static_cast<int64_t>(w.bytes.size());
    int64_t bytes = static_cast<int64_t>(c10::elementSize(*dtype));
    for (int64_t d : w.shape) {
      if (d < 0) return absl::InvalidArgumentError(absl::StrCat(w.name, ": negative dimension"));
      if (d > 0 && bytes > available / d) {
        return absl::DataLossError(absl::StrCat(w.name, ": ", available, " bytes for a larger shape"));
      }
      bytes *= d;
    }
    if (bytes != available) {
      return absl::DataLossError(absl::StrCat(w.name, ": ", available, " bytes for shape of ", bytes));
    }
    auto t = torch::empty(w.shape, torch::TensorOptions().dtype(*dtype));
    if (bytes > 0) std::memcpy(t.data_ptr(), w.bytes.data(), w.bytes.size());  // no storage when empty
    out.emplace(w.name, t);
  }
  return out;
}

absl::StatusOr<WireTensorView> ViewTensor(const std::string& name, const at::Tensor& tensor) {
  auto dtype = DtypeName(tensor.scalar_type());
  if (!dtype.ok()) return absl::InvalidArgumentError(absl::StrCat(name, ": ", dtype.status().message()));
  WireTensorView v;
  v.name = name;
  v.dtype = *dtype;
  v.holder = tensor.detach().to(at::kCPU).contiguous();  // no copy for a contiguous CPU parameter
  v.shape.assign(v.holder.sizes().begin(), v.holder.sizes().end());
  v.data = static_cast<const char*>(v.holder.data_ptr());
  v.size = static_cast<size_t>(v.holder.numel()) * v.holder.element_size();
  return v;
}

absl::Status TensorAssembler::CheckCurrentComplete() const {
  if (!current_.empty() && filled_ != expected_) {
    return absl::DataLossError(absl::StrCat(current_, ": ", filled_, " of ", expected_, " bytes received"));
  }
  return absl::OkStatus();
}

absl::Status TensorAssembler::Begin(const std::string& name, const std::string& dtype,
                                    const std::vector<int64_t>& shape) {
  if (absl::Status s = CheckCurrentComplete(); !s.ok()) return s;
  if (name.empty()) return absl::DataLossError("a tensor without a name");
  if (tensors_.count(name)) return absl::DataLossError(absl::StrCat(name, ": sent twice"));
  auto type = DtypeOf(dtype);
  if (!type.ok()) return absl::InvalidArgumentError(absl::StrCat(name, ": ", type.status().message()));
  int64_t numel = 1;
  for (int64_t d : shape) {
    if (d < 0 || (d > 0 && numel > (int64_t{1} << 40) / d)) {
      return absl::DataLossError(absl::StrCat(name, ": bad shape"));
    }
    numel *= d;
  }
  tensor_ = torch::empty(shape, torch::TensorOptions().dtype(*type));
  current_ = name;
  expected_ = static_cast<size_t>(numel) * tensor_.element_size();
  filled_ = 0;
  tensors_.emplace(name, tensor_);
  return absl::OkStatus();
}

absl::Status TensorAssembler::Append(int64_t offset, const void* data, size_t size) {
  if (current_.empty()) return absl::DataLossError("data before any tensor");
  if (offset < 0 || static_cast<size_t>(offset) != filled_) {
    return absl::DataLossError(absl::StrCat(current_, ": chunk at offset ", offset, ", expected ", filled_));
  }
  if (size > expected_ - filled_) {
    return absl::DataLossError(absl::StrCat(current_, ": more bytes than its shape holds (", expected_, ")"));
  }
  if (size == 0) return absl::OkStatus();  // an empty tensor has no storage: memcpy(nullptr, ..., 0) is UB
  std::memcpy(static_cast<char*>(tensor_.data_ptr()) + filled_, data, size);
  filled_ += size;
  return absl::OkStatus();
}

absl::StatusOr<model::TensorMap> TensorAssembler::Finish() {
  if (absl::Status s = CheckCurrentComplete(); !s.ok()) return s;
  current_.clear();
  tensor_ = at::Tensor();
  return std::move(tensors_);
}

}  // namespace r1r::train
