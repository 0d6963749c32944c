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
#include "common/model/safetensors_header.h"
#include "nlohmann/json.hpp"

namespace r1r::model {
namespace {

using Json = nlohmann::json;

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

// Every name here is one SafetensorsDtypeBytes knows, so a parsed entry always finds its type.
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
  auto layout = ParseSafetensorsHeader(path, mapping->data(), mapping->size());
  if (!layout.ok()) return layout.status();
  uint8_t* data = mapping->data() + layout->data_offset;

  TensorMap out;
  try {
    for (const SafetensorsEntry& e : layout->entries) {
      auto options = torch::TensorOptions().dtype(DtypeByName(e.dtype)->type).device(torch::kCPU);
      uint8_t* ptr = data + e.begin;
      at::Tensor t;
      if (e.begin == e.end) {
        t = torch::empty(e.shape, options);
      } else if (reinterpret_cast<uintptr_t>(ptr) % static_cast<uintptr_t>(e.dtype_bytes) == 0) {
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
