#include "common/dist/weight_snapshot.h"

#include <torch/torch.h>

#include <algorithm>
#include <limits>

#include <absl/strings/numbers.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/str_join.h>
#include <absl/strings/str_split.h>

#include "common/dist/crc32c.h"
#include "common/dist/finite_bits.h"

namespace r1r::dist {
namespace {

constexpr char kMagic[] = "r1r-weight-snapshot 1";
constexpr int64_t kMaxTensors = 1 << 20;
constexpr size_t kMaxNameBytes = 1024;

absl::StatusOr<std::string> DtypeName(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return std::string("F32");
    case at::kBFloat16: return std::string("BF16");
    case at::kHalf: return std::string("F16");
    case at::kDouble: return std::string("F64");
    case at::kLong: return std::string("I64");
    case at::kInt: return std::string("I32");
    case at::kByte: return std::string("U8");
    default: return absl::InvalidArgumentError(absl::StrCat("unsupported dtype ", c10::toString(t)));
  }
}

absl::StatusOr<at::ScalarType> DtypeOf(const std::string& name) {
  if (name == "F32") return at::kFloat;
  if (name == "BF16") return at::kBFloat16;
  if (name == "F16") return at::kHalf;
  if (name == "F64") return at::kDouble;
  if (name == "I64") return at::kLong;
  if (name == "I32") return at::kInt;
  if (name == "U8") return at::kByte;
  return absl::InvalidArgumentError(absl::StrCat("unknown dtype '", name.substr(0, 32), "'"));
}

int64_t AlignUp(int64_t n) { return (n + kSlotAlignment - 1) / kSlotAlignment * kSlotAlignment; }

// The slot of `bytes` bytes viewed as its dtype and shape.
at::Tensor SlotView(const at::Tensor& buffer, const TensorSlot& slot, at::ScalarType dtype) {
  return buffer.narrow(0, slot.offset, slot.bytes).view(dtype).view(slot.shape);
}

absl::Status Bad(const std::string& field, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat("weight manifest: ", field, ": ", why));
}

}  // namespace

namespace {

// `reuse`'s buffer when it has `bytes` bytes on `device`, else a new one.
at::Tensor BufferFor(int64_t bytes, const at::Device& device, const std::shared_ptr<WeightSnapshot>& reuse) {
  if (reuse && reuse->buffer().defined() && reuse->buffer().numel() == bytes && reuse->buffer().device() == device) {
    return reuse->buffer();
  }
  return torch::empty({bytes}, torch::TensorOptions().dtype(torch::kUInt8).device(device));
}

}  // namespace

absl::StatusOr<std::shared_ptr<WeightSnapshot>> WeightSnapshot::Copy(const NamedTensors& tensors, int64_t version,
                                                                     int64_t serial,
                                                                     std::shared_ptr<WeightSnapshot> reuse) {
  std::shared_ptr<WeightSnapshot> s(new WeightSnapshot());
  s->version_ = version;
  s->serial_ = serial;
  int64_t end = 0;
  at::Device device = tensors.empty() ? at::Device(at::kCPU) : tensors[0].second.device();
  for (const auto& [name, t] : tensors) {
    if (name.empty() || name.size() > kMaxNameBytes || name.find_first_of("\t\n") != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("weight snapshot: bad tensor name '", name.substr(0, 64), "'"));
    }
    if (t.device() != device) {
      return absl::InvalidArgumentError(absl::StrCat("weight snapshot: tensor ", name, " is on ", t.device().str(),
                                                     ", the others on ", device.str()));
    }
    auto dtype = DtypeName(t.scalar_type());
    if (!dtype.ok()) return absl::InvalidArgumentError(absl::StrCat("weight snapshot: tensor ", name, ": ", dtype.status().message()));
    TensorSlot slot;
    slot.name = name;
    slot.dtype = *dtype;
    slot.shape.assign(t.sizes().begin(), t.sizes().end());
    slot.offset = AlignUp(end);
    slot.bytes = t.numel() * static_cast<int64_t>(t.element_size());
    end = slot.offset + slot.bytes;
    s->tensor_bytes_ += slot.bytes;
    s->slots_.push_back(std::move(slot));
  }
  s->buffer_ = BufferFor(AlignUp(end), device, reuse);
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < tensors.size(); ++i) {
    SlotView(s->buffer_, s->slots_[i], tensors[i].second.scalar_type()).copy_(tensors[i].second.detach());
  }
  s->crc32c_ = s->ComputeCrc32c();
  return s;
}

absl::StatusOr<std::shared_ptr<WeightSnapshot>> WeightSnapshot::Allocate(const std::string& manifest,
                                                                         const std::string& device_name,
                                                                         std::shared_ptr<WeightSnapshot> reuse) {
  std::vector<std::string> lines = absl::StrSplit(manifest, '\n', absl::SkipEmpty());
  if (lines.size() < 6 || lines[0] != kMagic) return Bad("header", absl::StrCat("expected '", kMagic, "'"));
  std::shared_ptr<WeightSnapshot> s(new WeightSnapshot());
  int64_t buffer_bytes = 0, count = 0;
  uint32_t crc = 0;
  auto field = [&](size_t i, const std::string& key, auto* value) -> absl::Status {
    std::vector<std::string> kv = absl::StrSplit(lines[i], absl::MaxSplits(' ', 1));
    if (kv.size() != 2 || kv[0] != key || !absl::SimpleAtoi(kv[1], value)) return Bad(key, "missing or not a number");
    return absl::OkStatus();
  };
  if (auto st = field(1, "version", &s->version_); !st.ok()) return st;
  if (auto st = field(2, "serial", &s->serial_); !st.ok()) return st;
  if (auto st = field(3, "crc32c", &crc); !st.ok()) return st;
  if (auto st = field(4, "buffer", &buffer_bytes); !st.ok()) return st;
  if (auto st = field(5, "tensors", &count); !st.ok()) return st;
  s->crc32c_ = crc;
  if (s->version_ < 0) return Bad("version", "negative");
  if (buffer_bytes < 0 || buffer_bytes > kMaxSnapshotBytes) return Bad("buffer", "outside 0..1 TiB");
  if (count < 0 || count > kMaxTensors || static_cast<int64_t>(lines.size()) != 6 + count) {
    return Bad("tensors", absl::StrCat(count, " declared, ", lines.size() - 6, " listed"));
  }
  int64_t end = 0;
  for (size_t i = 6; i < lines.size(); ++i) {
    std::vector<std::string> cols = absl::StrSplit(lines[i], '\t');
    const std::string where = absl::StrCat("tensor ", i - 6);
    if (cols.size() != 5) return Bad(where, "needs name, dtype, shape, offset and bytes");
    TensorSlot slot;
    slot.name = cols[0];
    if (slot.name.empty() || slot.name.size() > kMaxNameBytes) return Bad(where, "bad name");
    auto dtype = DtypeOf(cols[1]);
    if (!dtype.ok()) return Bad(slot.name, std::string(dtype.status().message()));
    slot.dtype = cols[1];
    int64_t elements = 1;
    const std::vector<std::string> dims = absl::StrSplit(cols[2], ',', absl::SkipEmpty());
    for (const std::string& d : dims) {
      int64_t n = 0;
      if (!absl::SimpleAtoi(d, &n) || n < 0 || (n > 0 && elements > kMaxSnapshotBytes / n)) {
        return Bad(slot.name, absl::StrCat("bad shape '", cols[2].substr(0, 64), "'"));
      }
      elements *= n;
      slot.shape.push_back(n);
    }
    const int64_t element_size = static_cast<int64_t>(c10::elementSize(*dtype));
    if (!absl::SimpleAtoi(cols[3], &slot.offset) || !absl::SimpleAtoi(cols[4], &slot.bytes)) {
      return Bad(slot.name, "offset and bytes must be numbers");
    }
    if (elements > kMaxSnapshotBytes / element_size || slot.bytes != elements * element_size) {
      return Bad(slot.name, absl::StrCat(slot.bytes, " bytes for shape '", cols[2], "' of ", slot.dtype));
    }
    if (slot.offset % kSlotAlignment != 0 || slot.offset < end || slot.offset > buffer_bytes - slot.bytes) {
      return Bad(slot.name, absl::StrCat("offset ", slot.offset, " overlaps the previous tensor or leaves the buffer"));
    }
    end = slot.offset + slot.bytes;
    s->tensor_bytes_ += slot.bytes;
    s->slots_.push_back(std::move(slot));
  }
  try {
    s->buffer_ = BufferFor(buffer_bytes, at::Device(device_name), reuse);
  } catch (const std::exception& e) {
    return absl::ResourceExhaustedError(absl::StrCat("weight snapshot: cannot allocate ", buffer_bytes, " bytes on ",
                                                     device_name, ": ", e.what()));
  }
  return s;
}

std::string WeightSnapshot::Manifest() const {
  std::string out = absl::StrCat(kMagic, "\nversion ", version_, "\nserial ", serial_, "\ncrc32c ", crc32c_, "\nbuffer ",
                                 buffer_.defined() ? buffer_.numel() : 0, "\ntensors ", slots_.size(), "\n");
  for (const TensorSlot& s : slots_) {
    absl::StrAppend(&out, s.name, "\t", s.dtype, "\t", absl::StrJoin(s.shape, ","), "\t", s.offset, "\t", s.bytes, "\n");
  }
  return out;
}

uint32_t WeightSnapshot::ComputeCrc32c() const { return ContinueCrc32c(0, 0, buffer_.defined() ? buffer_.numel() : 0); }

uint32_t WeightSnapshot::ContinueCrc32c(uint32_t crc, int64_t begin, int64_t end) const {
  Check check{crc};
  Scan(&check, begin, end, /*finite=*/false);
  return check.crc;
}

void WeightSnapshot::Continue(Check* check, int64_t begin, int64_t end) const {
  Scan(check, begin, end, /*finite=*/check->nonfinite_slot < 0);
}

void WeightSnapshot::Scan(Check* check, int64_t begin, int64_t end, bool finite) const {
  // On the host, pieces small enough to stay in cache between the checksum and the finite check; on a
  // GPU each piece is a host copy (never the whole model at once).
  const bool on_host = buffer_.device().is_cpu();
  constexpr int64_t kHostPiece = 256 << 10;
  for (size_t i = 0; i < slots_.size(); ++i) {
    const TensorSlot& s = slots_[i];
    const int64_t from = std::max(begin, s.offset), to = std::min(end, s.offset + s.bytes);
    if (from >= to) continue;
    // The finite check covers the elements that end in [from, to): one that began before `from` is
    // whole now, one cut at `to` waits for the next range.
    const int64_t element = static_cast<int64_t>(c10::elementSize(*DtypeOf(s.dtype)));
    const int64_t first = s.offset + (from - s.offset) / element * element;
    const int64_t last = to == s.offset + s.bytes ? to : s.offset + (to - s.offset) / element * element;
    const int64_t piece_bytes = on_host ? kHostPiece : to - first;
    for (int64_t piece = first; piece < to; piece += piece_bytes) {
      const int64_t piece_end = std::min(to, piece + piece_bytes);
      at::Tensor bytes = buffer_.narrow(0, piece, piece_end - piece);
      if (!on_host) bytes = bytes.to(at::kCPU);
      const uint8_t* data = bytes.data_ptr<uint8_t>();
      const int64_t crc_from = std::max(piece, from);
      check->crc = Crc32c(check->crc, data + (crc_from - piece), static_cast<size_t>(piece_end - crc_from));
      const int64_t finite_end = std::min(piece_end, last);
      if (finite && check->nonfinite_slot < 0 && finite_end > piece &&
          !FiniteBits(data, (finite_end - piece) / element, s.dtype)) {
        check->nonfinite_slot = static_cast<int64_t>(i);
      }
    }
  }
}

absl::Status WeightSnapshot::Verify() const { return Verify(ComputeCrc32c()); }

absl::Status WeightSnapshot::Verify(uint32_t got) const {
  if (got != crc32c_) {
    return absl::DataLossError(absl::StrCat("weight broadcast of version ", version_, ": crc32c ", got,
                                            " received, the manifest says ", crc32c_));
  }
  return absl::OkStatus();
}

absl::Status WeightSnapshot::Verify(const Check& check) const {
  if (absl::Status s = Verify(check.crc); !s.ok()) return s;
  if (check.nonfinite_slot >= 0 && check.nonfinite_slot < static_cast<int64_t>(slots_.size())) {
    return absl::DataLossError(absl::StrCat("weight broadcast of version ", version_, ": tensor ",
                                            slots_[check.nonfinite_slot].name, " holds NaN or infinite values"));
  }
  return absl::OkStatus();
}

NamedTensors WeightSnapshot::Tensors() const {
  NamedTensors out;
  out.reserve(slots_.size());
  for (const TensorSlot& s : slots_) out.emplace_back(s.name, SlotView(buffer_, s, *DtypeOf(s.dtype)));
  return out;
}

}  // namespace r1r::dist
