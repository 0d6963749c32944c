#include "common/model/weights.h"

#include <filesystem>
#include <set>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace r1r::model {

std::string NormalizeCheckpointKey(const std::string& key) {
  static const std::vector<std::pair<std::string, std::string>> kPrefixes = {
      {"model.language_model.", "model."},
      {"model.visual.", "visual."},
      {"language_model.model.", "model."},
      {"language_model.lm_head.", "lm_head."},
      {"vision_tower.", "visual."},
  };
  for (const auto& [from, to] : kPrefixes) {
    if (absl::StartsWith(key, from)) return to + key.substr(from.size());
  }
  return key;
}

absl::Status LoadWeights(Qwen2_5_VL& model, const TensorMap& tensors) {
  TensorMap normalized;
  for (const auto& [key, tensor] : tensors) {
    std::string name = NormalizeCheckpointKey(key);
    if (!normalized.emplace(name, tensor).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", key, "' maps to '", name, "', which another key of the checkpoint already provides"));
    }
  }
  const bool tied = model.config().text.tie_word_embeddings;
  std::set<std::string> used;
  try {
    torch::NoGradGuard no_grad;
    for (auto& item : model.named_parameters(/*recurse=*/true)) {
      auto it = normalized.find(item.key());
      if (it == normalized.end()) {
        return absl::NotFoundError(absl::StrCat("checkpoint is missing tensor '", item.key(), "'"));
      }
      at::Tensor& param = item.value();
      if (it->second.sizes() != param.sizes()) {
        return absl::InvalidArgumentError(absl::StrCat("tensor '", item.key(), "' has shape ",
                                                       c10::str(it->second.sizes()), " but the config needs ",
                                                       c10::str(param.sizes())));
      }
      if (!at::isFloatingType(it->second.scalar_type())) {
        return absl::InvalidArgumentError(absl::StrCat("tensor '", item.key(), "' is not a floating-point tensor"));
      }
      param.copy_(it->second);
      used.insert(item.key());
    }
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("copying weights: ", e.what_without_backtrace()));
  }
  std::vector<std::string> unexpected;
  for (const auto& [name, tensor] : normalized) {
    if (used.count(name) != 0) continue;
    if (tied && name == "lm_head.weight") continue;  // some exporters write the tied copy anyway
    if (absl::EndsWith(name, "rotary_emb.inv_freq")) continue;  // recomputed, never learned
    unexpected.push_back(name);
  }
  if (!unexpected.empty()) {
    if (unexpected.size() > 5) unexpected.resize(5);
    return absl::InvalidArgumentError(absl::StrCat("checkpoint has tensors the configured model does not: ",
                                                   absl::StrJoin(unexpected, ", "),
                                                   " (wrong config.json, or tie_word_embeddings mismatch?)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<Qwen2_5_VL>> LoadPretrained(const std::string& dir, const ModelOptions& options) {
  auto config = LoadModelConfig(dir);
  if (!config.ok()) return config.status();
  auto tensors = ReadCheckpointTensors(dir);
  if (!tensors.ok()) return tensors.status();
  auto model = Qwen2_5_VL::CreateUninitialized(*config, options);
  if (!model.ok()) return model.status();
  absl::Status loaded = LoadWeights(**model, *tensors);
  if (!loaded.ok()) return absl::Status(loaded.code(), absl::StrCat(dir, ": ", loaded.message()));
  return model;
}

TensorMap ExportWeights(Qwen2_5_VL& model) {
  TensorMap out;
  for (const auto& item : model.named_parameters(/*recurse=*/true)) out[item.key()] = item.value().detach();
  return out;
}

absl::Status SaveCheckpoint(Qwen2_5_VL& model, const std::string& dir, int64_t max_shard_bytes) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  ModelConfig config = model.config();
  switch (model.options().dtype) {
    case at::kBFloat16: config.torch_dtype = "bfloat16"; break;
    case at::kHalf: config.torch_dtype = "float16"; break;
    default: config.torch_dtype = "float32"; break;
  }
  absl::Status st = WriteModelConfig(config, (std::filesystem::path(dir) / "config.json").string());
  if (!st.ok()) return st;
  return WriteCheckpointTensors(dir, ExportWeights(model), max_shard_bytes);
}

}  // namespace r1r::model
