#include "common/model/config.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status/macros.h"
#include "nlohmann/json.hpp"

namespace r1r::model {
namespace {

using Json = nlohmann::json;

// Looks a field up in the given objects, first hit wins. Scopes are tried in order, so the nested
// `text_config` can shadow stale top-level copies that some re-saves leave behind.
class FieldReader {
 public:
  FieldReader(std::vector<const Json*> scopes, std::string scope_name)
      : scopes_(std::move(scopes)), scope_name_(std::move(scope_name)) {}

  const Json* Find(const std::string& key) const {
    for (const Json* scope : scopes_) {
      if (scope != nullptr && scope->is_object()) {
        auto it = scope->find(key);
        if (it != scope->end() && !it->is_null()) return &*it;
      }
    }
    return nullptr;
  }

  absl::Status Int(const std::string& key, int64_t* out) const {
    const Json* v = Find(key);
    if (v == nullptr) return Missing(key);
    if (!v->is_number_integer()) return Malformed(key, "an integer");
    *out = v->get<int64_t>();
    return absl::OkStatus();
  }
  absl::Status Double(const std::string& key, double* out) const {
    const Json* v = Find(key);
    if (v == nullptr) return Missing(key);
    if (!v->is_number()) return Malformed(key, "a number");
    *out = v->get<double>();
    return absl::OkStatus();
  }
  absl::Status Bool(const std::string& key, bool* out) const {
    const Json* v = Find(key);
    if (v == nullptr) return Missing(key);
    if (!v->is_boolean()) return Malformed(key, "a boolean");
    *out = v->get<bool>();
    return absl::OkStatus();
  }
  absl::Status IntList(const std::string& key, std::vector<int64_t>* out) const {
    const Json* v = Find(key);
    if (v == nullptr) return Missing(key);
    return ParseIntList(key, *v, out);
  }
  absl::Status ParseIntList(const std::string& key, const Json& v, std::vector<int64_t>* out) const {
    if (!v.is_array()) return Malformed(key, "a list of integers");
    out->clear();
    for (const Json& e : v) {
      if (!e.is_number_integer()) return Malformed(key, "a list of integers");
      out->push_back(e.get<int64_t>());
    }
    return absl::OkStatus();
  }
  absl::Status Missing(const std::string& key) const {
    return absl::InvalidArgumentError(
        absl::StrCat("config.json: required field '", key, "' is missing (looked in ", scope_name_,
                     "); class defaults are not used because they describe a different model size"));
  }
  absl::Status Malformed(const std::string& key, const std::string& what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("config.json: field '", key, "' in ", scope_name_, " must be ", what));
  }

 private:
  std::vector<const Json*> scopes_;
  std::string scope_name_;
};

absl::Status ParseText(const Json& root, TextConfig* t) {
  const Json* nested = root.contains("text_config") ? &root["text_config"] : nullptr;
  FieldReader r({nested, &root}, nested ? "text_config and the top level" : "the top level");
  R1R_RETURN_IF_ERROR(r.Int("vocab_size", &t->vocab_size));
  R1R_RETURN_IF_ERROR(r.Int("hidden_size", &t->hidden_size));
  R1R_RETURN_IF_ERROR(r.Int("intermediate_size", &t->intermediate_size));
  R1R_RETURN_IF_ERROR(r.Int("num_hidden_layers", &t->num_hidden_layers));
  R1R_RETURN_IF_ERROR(r.Int("num_attention_heads", &t->num_attention_heads));
  R1R_RETURN_IF_ERROR(r.Int("num_key_value_heads", &t->num_key_value_heads));
  R1R_RETURN_IF_ERROR(r.Double("rms_norm_eps", &t->rms_norm_eps));
  // tie_word_embeddings sits at the top level in nested saves; both scopes are searched.
  R1R_RETURN_IF_ERROR(r.Bool("tie_word_embeddings", &t->tie_word_embeddings));
  if (r.Find("head_dim") != nullptr) {
    R1R_RETURN_IF_ERROR(r.Int("head_dim", &t->head_dim));
  } else if (t->num_attention_heads > 0) {
    t->head_dim = t->hidden_size / t->num_attention_heads;
  }
  if (r.Find("max_position_embeddings") != nullptr) {
    R1R_RETURN_IF_ERROR(r.Int("max_position_embeddings", &t->max_position_embeddings));
  }
  if (const Json* act = r.Find("hidden_act"); act != nullptr && *act != "silu") {
    return r.Malformed("hidden_act", "\"silu\" (the only activation Qwen2.5-VL uses)");
  }
  // rope_theta and mrope_section: transformers <= 4.5x writes rope_theta + rope_scaling,
  // v5 writes rope_parameters {rope_theta, mrope_section}.
  const Json* rope_scaling = r.Find("rope_scaling");
  const Json* rope_parameters = r.Find("rope_parameters");
  FieldReader rope({rope_parameters, rope_scaling, nested, &root},
                   "rope_parameters, rope_scaling, text_config and the top level");
  R1R_RETURN_IF_ERROR(rope.Double("rope_theta", &t->rope_theta));
  R1R_RETURN_IF_ERROR(rope.IntList("mrope_section", &t->mrope_section));
  return absl::OkStatus();
}

absl::Status ParseVision(const Json& root, VisionConfig* v) {
  if (!root.contains("vision_config") || !root["vision_config"].is_object()) {
    return absl::InvalidArgumentError("config.json: required object 'vision_config' is missing");
  }
  FieldReader r({&root["vision_config"]}, "vision_config");
  R1R_RETURN_IF_ERROR(r.Int("depth", &v->depth));
  R1R_RETURN_IF_ERROR(r.Int("hidden_size", &v->hidden_size));
  R1R_RETURN_IF_ERROR(r.Int("num_heads", &v->num_heads));
  R1R_RETURN_IF_ERROR(r.Int("intermediate_size", &v->intermediate_size));
  R1R_RETURN_IF_ERROR(r.Int("patch_size", &v->patch_size));
  R1R_RETURN_IF_ERROR(r.Int("temporal_patch_size", &v->temporal_patch_size));
  R1R_RETURN_IF_ERROR(r.Int("spatial_merge_size", &v->spatial_merge_size));
  R1R_RETURN_IF_ERROR(r.Int("window_size", &v->window_size));
  R1R_RETURN_IF_ERROR(r.Int("out_hidden_size", &v->out_hidden_size));
  R1R_RETURN_IF_ERROR(r.IntList("fullatt_block_indexes", &v->fullatt_block_indexes));
  // Older configs call it in_chans, newer in_channels; absent means RGB (documented default).
  if (r.Find("in_channels") != nullptr) {
    R1R_RETURN_IF_ERROR(r.Int("in_channels", &v->in_channels));
  } else if (r.Find("in_chans") != nullptr) {
    R1R_RETURN_IF_ERROR(r.Int("in_chans", &v->in_channels));
  }
  if (r.Find("tokens_per_second") != nullptr) {
    R1R_RETURN_IF_ERROR(r.Double("tokens_per_second", &v->tokens_per_second));
  }
  if (const Json* act = r.Find("hidden_act"); act != nullptr && *act != "silu") {
    return r.Malformed("hidden_act", "\"silu\"");
  }
  return absl::OkStatus();
}

absl::Status ParseTokenIds(const Json& root, ModelConfig* c) {
  const Json* nested = root.contains("text_config") ? &root["text_config"] : nullptr;
  FieldReader r({&root, nested}, nested ? "the top level and text_config" : "the top level");
  R1R_RETURN_IF_ERROR(r.Int("image_token_id", &c->image_token_id));
  R1R_RETURN_IF_ERROR(r.Int("vision_start_token_id", &c->vision_start_token_id));
  if (r.Find("video_token_id") != nullptr) {
    R1R_RETURN_IF_ERROR(r.Int("video_token_id", &c->video_token_id));
  } else {
    c->video_token_id = -1;
  }
  if (r.Find("vision_end_token_id") != nullptr) {
    R1R_RETURN_IF_ERROR(r.Int("vision_end_token_id", &c->vision_end_token_id));
  } else {
    c->vision_end_token_id = -1;
  }
  if (const Json* eos = r.Find("eos_token_id"); eos != nullptr) {
    if (eos->is_number_integer()) {
      c->eos_token_ids = {eos->get<int64_t>()};
    } else {
      R1R_RETURN_IF_ERROR(r.ParseIntList("eos_token_id", *eos, &c->eos_token_ids));
    }
  }
  if (const Json* bos = r.Find("bos_token_id"); bos != nullptr && bos->is_number_integer()) {
    c->bos_token_id = bos->get<int64_t>();
  }
  if (const Json* dt = r.Find("torch_dtype"); dt != nullptr && dt->is_string()) {
    c->torch_dtype = dt->get<std::string>();
  } else if (const Json* dt2 = r.Find("dtype"); dt2 != nullptr && dt2->is_string()) {
    c->torch_dtype = dt2->get<std::string>();
  }
  return absl::OkStatus();
}

absl::Status Invalid(const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("config.json: ", what));
}

}  // namespace

absl::Status ValidateModelConfig(const ModelConfig& c) {
  const TextConfig& t = c.text;
  const VisionConfig& v = c.vision;
  // Upper bounds far above any released model (Qwen2.5-VL-72B: hidden 8192, 80 layers, vocab 152064)
  // keep every product below (spatial_merge_size * patch_size, table sizes) inside int64: without them
  // a merge size times a patch size wrapped to 0 and the modulo below raised SIGFPE.
  struct Bounded {
    const char* name;
    int64_t value;
    int64_t max;
  };
  for (const Bounded& b : std::vector<Bounded>{
           {"vocab_size", t.vocab_size, 1 << 24},
           {"hidden_size", t.hidden_size, 1 << 16},
           {"intermediate_size", t.intermediate_size, 1 << 20},
           {"num_hidden_layers", t.num_hidden_layers, 1024},
           {"num_attention_heads", t.num_attention_heads, 1024},
           {"num_key_value_heads", t.num_key_value_heads, 1024},
           {"head_dim", t.head_dim, 4096},
           {"vision_config.depth", v.depth, 1024},
           {"vision_config.hidden_size", v.hidden_size, 1 << 16},
           {"vision_config.num_heads", v.num_heads, 1024},
           {"vision_config.intermediate_size", v.intermediate_size, 1 << 20},
           {"vision_config.in_channels", v.in_channels, 16},
           {"vision_config.patch_size", v.patch_size, 1024},
           {"vision_config.temporal_patch_size", v.temporal_patch_size, 64},
           {"vision_config.spatial_merge_size", v.spatial_merge_size, 64},
           {"vision_config.window_size", v.window_size, 1 << 16},
           {"vision_config.out_hidden_size", v.out_hidden_size, 1 << 16}}) {
    if (b.value <= 0 || b.value > b.max) {
      return Invalid(absl::StrCat("'", b.name, "' must be in [1, ", b.max, "], got ", b.value));
    }
  }
  if (t.max_position_embeddings < 0 || t.max_position_embeddings > (int64_t{1} << 24)) {
    return Invalid(absl::StrCat("'max_position_embeddings' must be in [0, 2^24], got ", t.max_position_embeddings));
  }
  if (t.num_attention_heads % t.num_key_value_heads != 0) {
    return Invalid(absl::StrCat("num_attention_heads (", t.num_attention_heads,
                                ") must be a multiple of num_key_value_heads (", t.num_key_value_heads, ")"));
  }
  if (t.head_dim % 2 != 0) return Invalid("head_dim must be even for rotary embeddings");
  if (t.mrope_section.size() != 3) return Invalid("mrope_section must have 3 entries (t, h, w)");
  int64_t sections = 0;
  for (int64_t s : t.mrope_section) {
    if (s < 0 || s > t.head_dim) return Invalid("mrope_section entries must be in [0, head_dim]");
    sections += s;
  }
  if (sections * 2 != t.head_dim) {
    return Invalid(absl::StrCat("mrope_section [", absl::StrJoin(t.mrope_section, ","), "] sums to ", sections,
                                " but head_dim/2 is ", t.head_dim / 2));
  }
  if (!(t.rms_norm_eps > 0 && std::isfinite(t.rms_norm_eps)) || !(t.rope_theta > 0 && std::isfinite(t.rope_theta))) {
    return Invalid("rms_norm_eps and rope_theta must be positive and finite");
  }
  if (!std::isfinite(v.tokens_per_second) || v.tokens_per_second < 0) {
    return Invalid("vision_config.tokens_per_second must be finite and non-negative");
  }
  if (v.hidden_size % v.num_heads != 0 || v.head_dim() % 4 != 0) {
    return Invalid("vision hidden_size / num_heads must be a multiple of 4 (2-D rotary halves)");
  }
  if (v.window_size % (v.spatial_merge_size * v.patch_size) != 0) {
    return Invalid("vision window_size must be a multiple of spatial_merge_size * patch_size");
  }
  for (int64_t b : v.fullatt_block_indexes) {
    if (b < 0 || b >= v.depth) {
      return Invalid(absl::StrCat("fullatt_block_indexes entry ", b, " is outside [0, depth=", v.depth, ")"));
    }
  }
  for (auto [name, id] : std::vector<std::pair<const char*, int64_t>>{
           {"image_token_id", c.image_token_id}, {"vision_start_token_id", c.vision_start_token_id}}) {
    if (id < 0 || id >= t.vocab_size) {
      return Invalid(absl::StrCat(name, " ", id, " is outside the vocabulary [0, ", t.vocab_size, ")"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ModelConfig> ParseModelConfig(const std::string& json_text) {
  Json root = Json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) {
    return absl::InvalidArgumentError("config.json: not a JSON object");
  }
  ModelConfig config;
  R1R_RETURN_IF_ERROR(ParseText(root, &config.text));
  R1R_RETURN_IF_ERROR(ParseVision(root, &config.vision));
  R1R_RETURN_IF_ERROR(ParseTokenIds(root, &config));
  R1R_RETURN_IF_ERROR(ValidateModelConfig(config));
  return config;
}

absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& path) {
  std::string file = path;
  if (std::ifstream probe(path + "/config.json"); probe.good()) file = path + "/config.json";
  std::ifstream in(file, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open config file ", file));
  std::stringstream ss;
  ss << in.rdbuf();
  auto config = ParseModelConfig(ss.str());
  if (!config.ok()) {
    return absl::Status(config.status().code(), absl::StrCat(file, ": ", config.status().message()));
  }
  return config;
}

std::string ModelConfigToJson(const ModelConfig& c) {
  const TextConfig& t = c.text;
  const VisionConfig& v = c.vision;
  Json vision = {
      {"depth", v.depth},
      {"hidden_size", v.hidden_size},
      {"hidden_act", "silu"},
      {"intermediate_size", v.intermediate_size},
      {"num_heads", v.num_heads},
      {"in_chans", v.in_channels},
      {"in_channels", v.in_channels},
      {"out_hidden_size", v.out_hidden_size},
      {"patch_size", v.patch_size},
      {"spatial_patch_size", v.patch_size},
      {"spatial_merge_size", v.spatial_merge_size},
      {"temporal_patch_size", v.temporal_patch_size},
      {"window_size", v.window_size},
      {"fullatt_block_indexes", v.fullatt_block_indexes},
      {"tokens_per_second", v.tokens_per_second > 0 ? v.tokens_per_second : 2.0},
      {"model_type", "qwen2_5_vl"},
  };
  Json root = {
      {"architectures", {"Qwen2_5_VLForConditionalGeneration"}},
      {"model_type", "qwen2_5_vl"},
      {"vocab_size", t.vocab_size},
      {"hidden_size", t.hidden_size},
      {"intermediate_size", t.intermediate_size},
      {"num_hidden_layers", t.num_hidden_layers},
      {"num_attention_heads", t.num_attention_heads},
      {"num_key_value_heads", t.num_key_value_heads},
      {"hidden_act", "silu"},
      {"rms_norm_eps", t.rms_norm_eps},
      {"rope_theta", t.rope_theta},
      {"rope_scaling", {{"type", "mrope"}, {"mrope_section", t.mrope_section}}},
      {"max_position_embeddings", t.max_position_embeddings > 0 ? t.max_position_embeddings : 32768},
      {"tie_word_embeddings", t.tie_word_embeddings},
      {"attention_dropout", 0.0},
      {"use_sliding_window", false},
      {"sliding_window", 32768},
      {"max_window_layers", t.num_hidden_layers},
      {"initializer_range", 0.02},
      {"use_cache", true},
      {"image_token_id", c.image_token_id},
      {"video_token_id", c.video_token_id},
      {"vision_start_token_id", c.vision_start_token_id},
      {"vision_end_token_id", c.vision_end_token_id},
      {"vision_token_id", c.vision_end_token_id + 1},
      {"torch_dtype", c.torch_dtype.empty() ? "float32" : c.torch_dtype},
      {"transformers_version", "4.49.0"},
      {"vision_config", vision},
  };
  if (t.head_dim != t.hidden_size / t.num_attention_heads) root["head_dim"] = t.head_dim;
  if (c.bos_token_id >= 0) root["bos_token_id"] = c.bos_token_id;
  if (c.eos_token_ids.size() == 1) root["eos_token_id"] = c.eos_token_ids[0];
  if (c.eos_token_ids.size() > 1) root["eos_token_id"] = c.eos_token_ids;
  return root.dump(2);
}

absl::Status WriteModelConfig(const ModelConfig& config, const std::string& path) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  out << ModelConfigToJson(config) << "\n";
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("short write to ", path));
  return absl::OkStatus();
}

ModelConfig MakeTinyConfig(const TinyConfigOptions& o) {
  ModelConfig c;
  TextConfig& t = c.text;
  t.vocab_size = o.vocab_size;
  t.hidden_size = o.hidden_size;
  t.intermediate_size = o.intermediate_size;
  t.num_hidden_layers = o.num_layers;
  t.num_attention_heads = o.num_heads;
  t.num_key_value_heads = o.num_kv_heads;
  t.head_dim = o.hidden_size / o.num_heads;
  t.rms_norm_eps = 1e-6;
  t.rope_theta = o.rope_theta;
  // Same proportions as the released [16, 24, 24] of 64 frequencies.
  const int64_t half = t.head_dim / 2;
  const int64_t sec_t = half / 4;
  const int64_t sec_h = (half - sec_t) / 2;
  t.mrope_section = {sec_t, sec_h, half - sec_t - sec_h};
  t.tie_word_embeddings = o.tie_word_embeddings;
  t.max_position_embeddings = 32768;

  VisionConfig& v = c.vision;
  v.depth = o.vision_depth;
  v.hidden_size = o.vision_hidden_size;
  v.num_heads = o.vision_heads;
  v.intermediate_size = o.vision_intermediate_size;
  v.in_channels = 3;
  v.patch_size = 14;
  v.temporal_patch_size = 2;
  v.spatial_merge_size = 2;
  v.window_size = 112;
  v.out_hidden_size = o.hidden_size;
  v.fullatt_block_indexes = {o.vision_depth - 1};
  v.tokens_per_second = 2.0;

  if (o.vocab_size > 151656) {
    c.bos_token_id = 151643;
    c.eos_token_ids = {151645, 151643};
    c.vision_start_token_id = 151652;
    c.vision_end_token_id = 151653;
    c.image_token_id = 151655;
    c.video_token_id = 151656;
  } else {
    const int64_t v_last = o.vocab_size - 1;
    c.video_token_id = v_last;
    c.image_token_id = v_last - 1;
    c.vision_end_token_id = v_last - 2;
    c.vision_start_token_id = v_last - 3;
    c.eos_token_ids = {v_last - 4};
    c.bos_token_id = v_last - 5;
  }
  c.torch_dtype = "float32";
  return c;
}

}  // namespace r1r::model
