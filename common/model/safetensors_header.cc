#include "common/model/safetensors_header.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace r1r::model {
namespace {

using Json = nlohmann::json;

// Largest header the reference implementation accepts; a bigger one means a corrupt length field.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

struct DtypeSize {
  const char* name;
  int64_t bytes;
};
constexpr DtypeSize kDtypeSizes[] = {{"BF16", 2}, {"F16", 2}, {"F32", 4}, {"F64", 8}, {"I64", 8},
                                     {"I32", 4},  {"I16", 2}, {"I8", 1},  {"U8", 1},  {"BOOL", 1}};

absl::Status Corrupt(const std::string& path, const std::string& tensor, const std::string& what) {
  if (tensor.empty()) return absl::DataLossError(absl::StrCat(path, ": ", what));
  return absl::DataLossError(absl::StrCat(path, ": tensor '", tensor, "': ", what));
}

absl::StatusOr<SafetensorsEntry> ParseEntry(const std::string& path, const std::string& name, const Json& v,
                                            uint64_t data_bytes) {
  SafetensorsEntry e;
  e.name = name;
  if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets")) {
    return Corrupt(path, name, "header entry needs dtype, shape and data_offsets");
  }
  const Json& dtype = v["dtype"];
  if (dtype.is_string()) {
    e.dtype = dtype.get<std::string>();
    e.dtype_bytes = SafetensorsDtypeBytes(e.dtype);
  }
  if (e.dtype_bytes == 0) {
    // Containers are named by type: dump() recurses, and a dtype nested 200k deep overflowed the stack.
    return Corrupt(path, name, absl::StrCat("unsupported dtype ", dtype.is_primitive() ? dtype.dump().substr(0, 64)
                                                                                       : dtype.type_name()));
  }
  const Json& shape = v["shape"];
  if (!shape.is_array()) return Corrupt(path, name, "shape is not a list");
  uint64_t numel = 1;
  for (const Json& d : shape) {
    if (!d.is_number_unsigned()) return Corrupt(path, name, "shape has a non-integer or negative dimension");
    const uint64_t dim = d.get<uint64_t>();
    if (dim != 0 && numel > (uint64_t{1} << 62) / dim) return Corrupt(path, name, "shape overflows");
    numel *= dim;
    e.shape.push_back(static_cast<int64_t>(dim));
  }
  const Json& off = v["data_offsets"];
  if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned()) {
    return Corrupt(path, name, "data_offsets must be two non-negative integers");
  }
  e.begin = off[0].get<uint64_t>();
  e.end = off[1].get<uint64_t>();
  if (e.begin > e.end) return Corrupt(path, name, "data_offsets are reversed");
  if (e.end > data_bytes) {
    return Corrupt(path, name,
                   absl::StrCat("data ends at byte ", e.end, " but the file holds only ", data_bytes,
                                " data bytes (truncated file?)"));
  }
  // numel < 2^62 and dtype_bytes <= 8 could still overflow; compare in the division's direction.
  const uint64_t bytes = e.end - e.begin;
  const uint64_t width = static_cast<uint64_t>(e.dtype_bytes);
  if (bytes % width != 0 || bytes / width != numel) {
    return Corrupt(path, name,
                   absl::StrCat("holds ", bytes, " bytes but dtype ", e.dtype, " and shape need ", numel * width));
  }
  return e;
}

}  // namespace

int64_t SafetensorsDtypeBytes(const std::string& dtype) {
  for (const auto& d : kDtypeSizes)
    if (dtype == d.name) return d.bytes;
  return 0;
}

absl::StatusOr<SafetensorsLayout> ParseSafetensorsHeader(const std::string& path, const uint8_t* bytes,
                                                         size_t size) {
  if (size < 8) return Corrupt(path, "", "file is shorter than the 8-byte header length");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
  if (header_len > kMaxHeaderBytes || header_len > size - 8) {
    return Corrupt(path, "", absl::StrCat("header length ", header_len, " exceeds the file (", size,
                                          " bytes); truncated or not a safetensors file"));
  }
  const char* header_begin = reinterpret_cast<const char*>(bytes + 8);
  Json header = Json::parse(header_begin, header_begin + header_len, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) return Corrupt(path, "", "header is not a JSON object");

  SafetensorsLayout layout;
  layout.data_offset = 8 + header_len;
  const uint64_t data_bytes = size - layout.data_offset;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    auto e = ParseEntry(path, it.key(), it.value(), data_bytes);
    if (!e.ok()) return e.status();
    layout.entries.push_back(*std::move(e));
  }
  std::vector<const SafetensorsEntry*> by_offset;
  for (const SafetensorsEntry& e : layout.entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const SafetensorsEntry* a, const SafetensorsEntry* b) { return a->begin < b->begin; });
  // A running maximum, not only neighbours: one long tensor may cover several that start after it.
  const SafetensorsEntry* furthest = nullptr;
  for (const SafetensorsEntry* e : by_offset) {
    if (e->begin == e->end) continue;
    if (furthest != nullptr && e->begin < furthest->end) {
      return Corrupt(path, e->name, absl::StrCat("data overlaps tensor '", furthest->name, "'"));
    }
    if (furthest == nullptr || e->end > furthest->end) furthest = e;
  }
  return layout;
}

}  // namespace r1r::model
