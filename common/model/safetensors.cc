#include "common/model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <vector>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace r1r::model {
namespace {

using Json = nlohmann::json;

// Largest header the reference implementation accepts; a bigger one means a corrupt length field.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

struct DtypeInfo {
  const char* name;
  at::ScalarType type;
  int64_t bytes;
};
constexpr DtypeInfo kDtypes[] = {
    {"BF16", at::kBFloat16, 2}, {"F16", at::kHalf, 2}, {"F32", at::kFloat, 4}, {"F64", at::kDouble, 8},
    {"I64", at::kLong, 8},      {"I32", at::kInt, 4},  {"I16", at::kShort, 2}, {"I8", at::kChar, 1},
    {"U8", at::kByte, 1},       {"BOOL", at::kBool, 1},
};

const DtypeInfo* DtypeByName(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}
const DtypeInfo* DtypeByType(at::ScalarType type) {
  for (const auto& d : kDtypes)
    if (type == d.type) return &d;
  return nullptr;
}

// A read-only-on-disk, copy-on-write mapping of a whole file; unmapped when the last tensor dies.
class FileMapping {
 public:
  static absl::StatusOr<std::shared_ptr<FileMapping>> Open(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      ::close(fd);
      return absl::InternalError(absl::StrCat("cannot stat ", path));
    }
    auto mapping = std::shared_ptr<FileMapping>(new FileMapping());
    mapping->size_ = static_cast<size_t>(st.st_size);
    if (mapping->size_ > 0) {
      void* p = ::mmap(nullptr, mapping->size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        ::close(fd);
        return absl::InternalError(absl::StrCat("cannot mmap ", path, ": ", std::strerror(errno)));
      }
      mapping->data_ = static_cast<uint8_t*>(p);
    }
    ::close(fd);
    return mapping;
  }
  ~FileMapping() {
    if (data_ != nullptr) ::munmap(data_, size_);
  }
  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  FileMapping() = default;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

struct Entry {
  std::string name;
  const DtypeInfo* dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};

absl::Status Corrupt(const std::string& path, const std::string& tensor, const std::string& what) {
  if (tensor.empty()) return absl::DataLossError(absl::StrCat(path, ": ", what));
  return absl::DataLossError(absl::StrCat(path, ": tensor '", tensor, "': ", what));
}

absl::StatusOr<Entry> ParseEntry(const std::string& path, const std::string& name, const Json& v,
                                 uint64_t data_bytes) {
  Entry e;
  e.name = name;
  if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets")) {
    return Corrupt(path, name, "header entry needs dtype, shape and data_offsets");
  }
  if (!v["dtype"].is_string() || (e.dtype = DtypeByName(v["dtype"].get<std::string>())) == nullptr) {
    // Containers are named by type: dump() recurses, and a dtype nested 200k deep overflowed the stack.
    const Json& dtype = v["dtype"];
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
  const uint64_t expected = numel * static_cast<uint64_t>(e.dtype->bytes);
  if (e.end - e.begin != expected) {
    return Corrupt(path, name,
                   absl::StrCat("holds ", e.end - e.begin, " bytes but dtype ", e.dtype->name, " and shape need ",
                                expected));
  }
  return e;
}

absl::Status WriteFileAtomically(const std::string& path, const std::string& header,
                                 const std::vector<at::Tensor>& blobs) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", tmp));
    uint64_t n = header.size();
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>((n >> (8 * i)) & 0xff);
    out.write(reinterpret_cast<const char*>(len), 8);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    for (const at::Tensor& t : blobs) {
      out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
    }
    out.close();
    if (!out) return absl::InternalError(absl::StrCat("short write to ", tmp));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename ", tmp, " to ", path));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TensorMap> ReadSafetensors(const std::string& path) {
  auto mapping_or = FileMapping::Open(path);
  if (!mapping_or.ok()) return mapping_or.status();
  std::shared_ptr<FileMapping> mapping = *std::move(mapping_or);
  if (mapping->size() < 8) return Corrupt(path, "", "file is shorter than the 8-byte header length");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | mapping->data()[i];
  if (header_len > kMaxHeaderBytes || header_len > mapping->size() - 8) {
    return Corrupt(path, "", absl::StrCat("header length ", header_len, " exceeds the file (", mapping->size(),
                                          " bytes); truncated or not a safetensors file"));
  }
  const char* header_begin = reinterpret_cast<const char*>(mapping->data() + 8);
  Json header = Json::parse(header_begin, header_begin + header_len, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) return Corrupt(path, "", "header is not a JSON object");
  const uint64_t data_bytes = mapping->size() - 8 - header_len;
  uint8_t* data = mapping->data() + 8 + header_len;

  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    auto e = ParseEntry(path, it.key(), it.value(), data_bytes);
    if (!e.ok()) return e.status();
    entries.push_back(*std::move(e));
  }
  std::vector<const Entry*> by_offset;
  for (const Entry& e : entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const Entry* a, const Entry* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i]->begin < by_offset[i - 1]->end && by_offset[i]->end > by_offset[i]->begin) {
      return Corrupt(path, by_offset[i]->name, absl::StrCat("data overlaps tensor '", by_offset[i - 1]->name, "'"));
    }
  }

  TensorMap out;
  try {
    for (const Entry& e : entries) {
      auto options = torch::TensorOptions().dtype(e.dtype->type).device(torch::kCPU);
      uint8_t* ptr = data + e.begin;
      at::Tensor t;
      if (e.begin == e.end) {
        t = torch::empty(e.shape, options);
      } else if (reinterpret_cast<uintptr_t>(ptr) % static_cast<uintptr_t>(e.dtype->bytes) == 0) {
        t = torch::from_blob(ptr, e.shape, [mapping](void*) {}, options);
      } else {
        // Unaligned data (header not padded to 8): copy instead of handing out a misaligned view.
        t = torch::empty(e.shape, options);
        std::memcpy(t.data_ptr(), ptr, e.end - e.begin);
      }
      out.emplace(e.name, std::move(t));
    }
  } catch (const c10::Error& err) {
    return absl::InternalError(absl::StrCat(path, ": ", err.what_without_backtrace()));
  }
  return out;
}

absl::StatusOr<TensorMap> ReadCheckpointTensors(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    if (fs::is_regular_file(dir, ec)) return ReadSafetensors(dir);
    return absl::NotFoundError(absl::StrCat("checkpoint directory ", dir, " does not exist"));
  }
  const fs::path index_path = fs::path(dir) / "model.safetensors.index.json";
  TensorMap out;
  if (fs::exists(index_path, ec)) {
    std::ifstream in(index_path);
    std::stringstream ss;
    ss << in.rdbuf();
    Json index = Json::parse(ss.str(), nullptr, false);
    if (index.is_discarded() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
      return absl::DataLossError(absl::StrCat(index_path.string(), ": no weight_map object"));
    }
    std::map<std::string, std::vector<std::string>> by_file;
    for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
      if (!it.value().is_string()) {
        return absl::DataLossError(absl::StrCat(index_path.string(), ": tensor '", it.key(), "' maps to a non-string"));
      }
      by_file[it.value().get<std::string>()].push_back(it.key());
    }
    for (const auto& [file, names] : by_file) {
      if (file.find('/') != std::string::npos) {
        return absl::DataLossError(absl::StrCat(index_path.string(), ": shard name '", file, "' is not a plain file name"));
      }
      auto shard = ReadSafetensors((fs::path(dir) / file).string());
      if (!shard.ok()) return shard.status();
      for (const std::string& name : names) {
        auto it = shard->find(name);
        if (it == shard->end()) {
          return absl::DataLossError(absl::StrCat("tensor '", name, "' is listed in ", index_path.string(),
                                                  " under ", file, " but that shard does not contain it"));
        }
        out[name] = it->second;
      }
    }
    return out;
  }
  // As transformers: a single model.safetensors is the checkpoint, and other .safetensors files beside
  // it (test cases, adapters) are not weights. Without it, every *.safetensors is a shard.
  if (fs::exists(fs::path(dir) / "model.safetensors", ec)) return ReadSafetensors((fs::path(dir) / "model.safetensors").string());
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".safetensors") files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) return absl::NotFoundError(absl::StrCat("no *.safetensors files in ", dir));
  for (const std::string& file : files) {
    auto shard = ReadSafetensors(file);
    if (!shard.ok()) return shard.status();
    for (auto& [name, t] : *shard) {
      if (!out.emplace(name, t).second) {
        return absl::DataLossError(absl::StrCat("tensor '", name, "' appears in more than one file of ", dir));
      }
    }
  }
  return out;
}

absl::Status WriteSafetensors(const std::string& path, const TensorMap& tensors) {
  Json header = Json::object();
  header["__metadata__"] = {{"format", "pt"}};
  std::vector<at::Tensor> blobs;
  uint64_t offset = 0;
  try {
    for (const auto& [name, tensor] : tensors) {
      const DtypeInfo* dtype = DtypeByType(tensor.scalar_type());
      if (dtype == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' has a dtype safetensors cannot hold"));
      }
      at::Tensor cpu = tensor.detach().to(torch::kCPU).contiguous();
      const uint64_t n = cpu.nbytes();
      header[name] = {{"dtype", dtype->name}, {"shape", cpu.sizes().vec()}, {"data_offsets", {offset, offset + n}}};
      offset += n;
      blobs.push_back(std::move(cpu));
    }
  } catch (const c10::Error& err) {
    return absl::InternalError(absl::StrCat(path, ": ", err.what_without_backtrace()));
  }
  std::string text = header.dump();
  // Pad with spaces so the data section starts 8-byte aligned (allowed by the format, expected by mmap users).
  text.append((8 - (8 + text.size()) % 8) % 8, ' ');
  return WriteFileAtomically(path, text, blobs);
}

absl::Status WriteCheckpointTensors(const std::string& dir, const TensorMap& tensors, int64_t max_shard_bytes) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  std::vector<TensorMap> shards(1);
  int64_t shard_bytes = 0, total = 0;
  for (const auto& [name, t] : tensors) {
    const int64_t n = static_cast<int64_t>(t.nbytes());
    if (shard_bytes > 0 && shard_bytes + n > max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back()[name] = t;
    shard_bytes += n;
    total += n;
  }
  if (shards.size() == 1) {
    fs::remove(fs::path(dir) / "model.safetensors.index.json", ec);
    return WriteSafetensors((fs::path(dir) / "model.safetensors").string(), tensors);
  }
  Json weight_map = Json::object();
  for (size_t i = 0; i < shards.size(); ++i) {
    const std::string file = absl::StrFormat("model-%05d-of-%05d.safetensors", i + 1, shards.size());
    absl::Status st = WriteSafetensors((fs::path(dir) / file).string(), shards[i]);
    if (!st.ok()) return st;
    for (const auto& [name, t] : shards[i]) weight_map[name] = file;
  }
  Json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  const std::string index_path = (fs::path(dir) / "model.safetensors.index.json").string();
  std::ofstream out(index_path + ".tmp", std::ios::trunc);
  out << index.dump(2) << "\n";
  out.close();
  if (!out || std::rename((index_path + ".tmp").c_str(), index_path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot write ", index_path));
  }
  fs::remove(fs::path(dir) / "model.safetensors", ec);
  return absl::OkStatus();
}

}  // namespace r1r::model
