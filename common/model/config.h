// Qwen2.5-VL configuration, read from a checkpoint's config.json.
//
// Both layouts are accepted: the flat one shipped on the Hub (text fields at the top level) and the
// nested one written by transformers >= 4.52 (`text_config` / `vision_config`). Required fields are
// never filled from class defaults: the HF class defaults describe the 72B model (and a vision tower
// with hidden_size 3584), so a silent default would build the wrong network.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace r1r::model {

struct TextConfig {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;  // hidden_size / num_attention_heads unless config.json says otherwise
  double rms_norm_eps = 0.0;
  double rope_theta = 0.0;
  // Frequency-index sections (t, h, w) of M-RoPE; they sum to head_dim / 2.
  std::vector<int64_t> mrope_section;
  bool tie_word_embeddings = false;
  int64_t max_position_embeddings = 0;  // informational; 0 when absent
};

struct VisionConfig {
  int64_t depth = 0;
  int64_t hidden_size = 0;
  int64_t num_heads = 0;
  int64_t intermediate_size = 0;
  int64_t in_channels = 3;  // the only field with a documented default (older configs omit it)
  int64_t patch_size = 0;
  int64_t temporal_patch_size = 0;
  int64_t spatial_merge_size = 0;
  int64_t window_size = 0;  // pixels
  int64_t out_hidden_size = 0;
  std::vector<int64_t> fullatt_block_indexes;
  double tokens_per_second = 0.0;  // videos only; 0 when absent

  int64_t head_dim() const { return hidden_size / num_heads; }
  // Elements of one flattened patch row of pixel_values: C * T * P * P.
  int64_t patch_dim() const { return in_channels * temporal_patch_size * patch_size * patch_size; }
  // Side of an attention window in merged cells (112 px / 14 / 2 = 4 for the released models).
  int64_t merge_window_cells() const { return window_size / spatial_merge_size / patch_size; }
};

struct ModelConfig {
  TextConfig text;
  VisionConfig vision;
  int64_t image_token_id = 0;
  int64_t video_token_id = 0;
  int64_t vision_start_token_id = 0;
  int64_t vision_end_token_id = 0;
  std::vector<int64_t> eos_token_ids;  // may be empty
  int64_t bos_token_id = -1;           // -1 when absent
  std::string torch_dtype;             // as written ("bfloat16", ...); empty when absent
};

// Parses config.json text. Errors name the missing or malformed field.
absl::StatusOr<ModelConfig> ParseModelConfig(const std::string& json_text);
// Reads `path` (a config.json file, or a checkpoint directory containing one).
absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& path);

// Internal consistency (head counts divide, mrope sections sum to head_dim/2, ...).
absl::Status ValidateModelConfig(const ModelConfig& config);

// config.json text in the flat Hub layout, which every transformers version and vLLM read.
std::string ModelConfigToJson(const ModelConfig& config);
absl::Status WriteModelConfig(const ModelConfig& config, const std::string& path);

// A tiny random-initialisable configuration of the same architecture, for tests and the CPU demo.
// Special-token ids are the real Qwen ids when the vocabulary is large enough, otherwise the last
// ids of the vocabulary (so a small trained tokenizer can put them there).
struct TinyConfigOptions {
  int64_t vocab_size = 512;
  int64_t hidden_size = 64;
  int64_t intermediate_size = 128;
  int64_t num_layers = 2;
  int64_t num_heads = 4;
  int64_t num_kv_heads = 2;
  int64_t vision_depth = 2;
  int64_t vision_hidden_size = 32;
  int64_t vision_heads = 2;
  int64_t vision_intermediate_size = 64;
  bool tie_word_embeddings = false;
  // Qwen2.5-VL's base. A tiny model on a few hundred tokens might want more fast-turning frequencies
  // for attending by relative position; on the demo task 1e4 did not help (docs/experiments.md).
  double rope_theta = 1000000.0;
};
ModelConfig MakeTinyConfig(const TinyConfigOptions& options = {});

}  // namespace r1r::model
