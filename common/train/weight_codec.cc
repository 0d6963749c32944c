#include "common/train/weight_codec.h"

#include <torch/torch.h>

#include <array>
#include <cstring>

#include <absl/strings/str_cat.h>

namespace r1r::train {
namespace {

std::array<uint32_t, 256> MakeTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0x82F63B78u ^ (c >> 1) : c >> 1;  // Castagnoli, reflected
    t[i] = c;
  }
  return t;
}

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

uint32_t Crc32c(uint32_t crc, const void* data, size_t size) {
  static const std::array<uint32_t, 256> kTable = MakeTable();
  const auto* p = static_cast<const uint8_t*>(data);
  crc = ~crc;
  for (size_t i = 0; i < size; ++i) crc = kTable[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

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
    int64_t numel = 1;
    for (int64_t d : w.shape) {
      if (d < 0) return absl::InvalidArgumentError(absl::StrCat(w.name, ": negative dimension"));
      numel *= d;
    }
    auto t = torch::empty(w.shape, torch::TensorOptions().dtype(*dtype));
    if (static_cast<size_t>(numel * t.element_size()) != w.bytes.size()) {
      return absl::DataLossError(absl::StrCat(w.name, ": ", w.bytes.size(), " bytes for shape of ",
                                              numel * t.element_size()));
    }
    std::memcpy(t.data_ptr(), w.bytes.data(), w.bytes.size());
    out.emplace(w.name, t);
  }
  return out;
}

}  // namespace r1r::train
