// config.json parsing (both layouts, missing fields) and the integer position logic
// (get_rope_index, get_window_index) against the worked examples of reference/qwen2_5_vl.md.
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <string>

#include "common/model/config.h"
#include "common/model/positions.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace r1r::model {
namespace {

// The Hub config.json of Qwen2.5-VL-7B-Instruct (flat layout).
const char* kFlat7B = R"({
  "architectures": ["Qwen2_5_VLForConditionalGeneration"], "attention_dropout": 0.0,
  "bos_token_id": 151643, "eos_token_id": 151645, "vision_start_token_id": 151652,
  "vision_end_token_id": 151653, "vision_token_id": 151654, "image_token_id": 151655,
  "video_token_id": 151656, "hidden_act": "silu", "hidden_size": 3584, "initializer_range": 0.02,
  "intermediate_size": 18944, "max_position_embeddings": 128000, "max_window_layers": 28,
  "model_type": "qwen2_5_vl", "num_attention_heads": 28, "num_hidden_layers": 28,
  "num_key_value_heads": 4, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768,
  "tie_word_embeddings": false, "torch_dtype": "bfloat16", "transformers_version": "4.41.2",
  "use_cache": true, "use_sliding_window": false,
  "vision_config": {"depth": 32, "hidden_act": "silu", "hidden_size": 1280, "intermediate_size": 3420,
    "num_heads": 16, "in_chans": 3, "out_hidden_size": 3584, "patch_size": 14, "spatial_merge_size": 2,
    "spatial_patch_size": 14, "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31],
    "tokens_per_second": 2, "temporal_patch_size": 2},
  "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
  "vocab_size": 152064})";

// A transformers >= 4.53 re-save of the 3B model (nested layout, v5-style rope_parameters).
const char* kNested3B = R"({
  "architectures": ["Qwen2_5_VLForConditionalGeneration"], "model_type": "qwen2_5_vl",
  "image_token_id": 151655, "video_token_id": 151656, "vision_start_token_id": 151652,
  "vision_end_token_id": 151653, "tie_word_embeddings": true, "dtype": "bfloat16",
  "text_config": {"model_type": "qwen2_5_vl_text", "hidden_size": 2048, "intermediate_size": 11008,
    "num_hidden_layers": 36, "num_attention_heads": 16, "num_key_value_heads": 2, "rms_norm_eps": 1e-06,
    "vocab_size": 151936, "hidden_act": "silu", "eos_token_id": 151645,
    "layer_types": ["full_attention"],
    "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]}},
  "vision_config": {"depth": 32, "hidden_act": "silu", "hidden_size": 1280, "intermediate_size": 3420,
    "num_heads": 16, "in_channels": 3, "out_hidden_size": 2048, "patch_size": 14, "spatial_merge_size": 2,
    "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31], "tokens_per_second": 2,
    "temporal_patch_size": 2}})";

TEST(model, ConfigParsesFlatLayout) {
  auto c = ParseModelConfig(kFlat7B);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->text.hidden_size, 3584);
  EXPECT_EQ(c->text.num_key_value_heads, 4);
  EXPECT_EQ(c->text.head_dim, 128);
  EXPECT_EQ(c->text.vocab_size, 152064);
  EXPECT_DOUBLE_EQ(c->text.rms_norm_eps, 1e-6);
  EXPECT_EQ(c->text.mrope_section, (std::vector<int64_t>{16, 24, 24}));
  EXPECT_FALSE(c->text.tie_word_embeddings);
  EXPECT_EQ(c->vision.hidden_size, 1280);
  EXPECT_EQ(c->vision.out_hidden_size, 3584);
  EXPECT_EQ(c->vision.patch_dim(), 1176);
  EXPECT_EQ(c->vision.merge_window_cells(), 4);
  EXPECT_EQ(c->vision.fullatt_block_indexes, (std::vector<int64_t>{7, 15, 23, 31}));
  EXPECT_EQ(c->image_token_id, 151655);
  EXPECT_EQ(c->eos_token_ids, (std::vector<int64_t>{151645}));
}

TEST(model, ConfigParsesNestedLayout) {
  auto c = ParseModelConfig(kNested3B);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->text.hidden_size, 2048);
  EXPECT_EQ(c->text.num_hidden_layers, 36);
  EXPECT_EQ(c->text.vocab_size, 151936);
  EXPECT_DOUBLE_EQ(c->text.rope_theta, 1e6);
  EXPECT_EQ(c->text.mrope_section, (std::vector<int64_t>{16, 24, 24}));
  EXPECT_TRUE(c->text.tie_word_embeddings);
  EXPECT_EQ(c->vision.out_hidden_size, 2048);
  EXPECT_EQ(c->torch_dtype, "bfloat16");
}

TEST(model, ConfigMissingFieldIsNamed) {
  for (const char* field : {"num_key_value_heads", "rms_norm_eps", "tie_word_embeddings", "vocab_size"}) {
    auto json = nlohmann::json::parse(kFlat7B);
    json.erase(field);
    auto c = ParseModelConfig(json.dump());
    ASSERT_FALSE(c.ok()) << field;
    EXPECT_NE(std::string(c.status().message()).find(field), std::string::npos) << c.status();
  }
  auto json = nlohmann::json::parse(kNested3B);
  json["vision_config"].erase("window_size");
  auto c = ParseModelConfig(json.dump());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(std::string(c.status().message()).find("window_size"), std::string::npos) << c.status();
  json = nlohmann::json::parse(kNested3B);
  json["text_config"]["rope_parameters"].erase("mrope_section");
  c = ParseModelConfig(json.dump());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(std::string(c.status().message()).find("mrope_section"), std::string::npos) << c.status();
}

TEST(model, ConfigRejectsInconsistentSizes) {
  auto json = nlohmann::json::parse(kFlat7B);
  json["rope_scaling"]["mrope_section"] = {16, 24, 20};
  EXPECT_FALSE(ParseModelConfig(json.dump()).ok());
  json = nlohmann::json::parse(kFlat7B);
  json["num_key_value_heads"] = 5;
  EXPECT_FALSE(ParseModelConfig(json.dump()).ok());
  EXPECT_FALSE(ParseModelConfig("{not json").ok());
}

// Hostile config.json values (issue 16): each is an error naming the field, none reaches arithmetic.
TEST(model, ConfigRejectsOverflowingAndMistypedFields) {
  // spatial_merge_size * patch_size = 2^64 wrapped to 0, and window_size % 0 raised SIGFPE.
  auto json = nlohmann::json::parse(kFlat7B);
  json["vision_config"]["spatial_merge_size"] = int64_t{1} << 32;
  json["vision_config"]["patch_size"] = int64_t{1} << 32;
  auto c = ParseModelConfig(json.dump());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(std::string(c.status().message()).find("vision_config.patch_size"), std::string::npos) << c.status();
  json = nlohmann::json::parse(kFlat7B);
  json["vision_config"]["spatial_merge_size"] = int64_t{1} << 62;
  c = ParseModelConfig(json.dump());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(std::string(c.status().message()).find("spatial_merge_size"), std::string::npos) << c.status();
  for (const char* field : {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers"}) {
    json = nlohmann::json::parse(kFlat7B);
    json[field] = INT64_MAX;
    c = ParseModelConfig(json.dump());
    ASSERT_FALSE(c.ok()) << field;
    EXPECT_NE(std::string(c.status().message()).find(field), std::string::npos) << c.status();
  }
  json = nlohmann::json::parse(kFlat7B);
  json["rope_scaling"]["mrope_section"] = {INT64_MAX, INT64_MAX, 2};  // the sum overflowed
  EXPECT_FALSE(ParseModelConfig(json.dump()).ok());
  json = nlohmann::json::parse(kFlat7B);
  json["max_position_embeddings"] = -1;
  EXPECT_FALSE(ParseModelConfig(json.dump()).ok());
  // "yes" is not a boolean: a type error naming the field, not an exception.
  json = nlohmann::json::parse(kFlat7B);
  json["tie_word_embeddings"] = "yes";
  c = ParseModelConfig(json.dump());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(std::string(c.status().message()).find("'tie_word_embeddings'"), std::string::npos) << c.status();
  EXPECT_NE(std::string(c.status().message()).find("must be a boolean"), std::string::npos) << c.status();
  // The released sizes still load.
  EXPECT_TRUE(ParseModelConfig(kFlat7B).ok());
  EXPECT_TRUE(ParseModelConfig(kNested3B).ok());
}

TEST(model, TinyConfigJsonRoundTrip) {
  ModelConfig tiny = MakeTinyConfig({.tie_word_embeddings = true});
  auto parsed = ParseModelConfig(ModelConfigToJson(tiny));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->text.hidden_size, tiny.text.hidden_size);
  EXPECT_EQ(parsed->text.mrope_section, tiny.text.mrope_section);
  EXPECT_EQ(parsed->text.mrope_section, (std::vector<int64_t>{2, 3, 3}));
  EXPECT_TRUE(parsed->text.tie_word_embeddings);
  EXPECT_EQ(parsed->vision.fullatt_block_indexes, tiny.vision.fullatt_block_indexes);
  EXPECT_EQ(parsed->image_token_id, tiny.image_token_id);
  EXPECT_EQ(parsed->eos_token_ids, tiny.eos_token_ids);
  EXPECT_DOUBLE_EQ(parsed->text.rope_theta, 1e6);  // Qwen2.5-VL's unless the tiny options say otherwise
  EXPECT_DOUBLE_EQ(ParseModelConfig(ModelConfigToJson(MakeTinyConfig({.rope_theta = 1e4})))->text.rope_theta, 1e4);
}

// reference §3.2: system prompt + a 640x480 image (grid 34x46 -> 17x23 = 391 pads) + "What?"...
TEST(model, RopeIndexMatchesReferenceExample) {
  auto config = ParseModelConfig(kFlat7B);
  ASSERT_TRUE(config.ok());
  std::vector<int64_t> ids = {151644, 8948, 198, 2610, 525, 264, 10950, 17847, 13, 151645, 198, 151644, 872, 198, 151652};
  ids.insert(ids.end(), 391, 151655);
  ids.push_back(151653);
  for (int64_t id : {3838, 30, 151645, 198, 151644, 77091}) ids.push_back(id);
  ASSERT_EQ(ids.size(), 413u);
  auto index = ComputeRopeIndex(ids, {{1, 34, 46}}, *config, 413);
  ASSERT_TRUE(index.ok()) << index.status();
  for (int s = 0; s < 3; ++s)
    for (int i = 0; i < 15; ++i) EXPECT_EQ(index->positions[s][i], i);
  // First image token (row 0, col 0) and last (row 16, col 22).
  EXPECT_EQ(index->positions[0][15], 15);
  EXPECT_EQ(index->positions[1][15], 15);
  EXPECT_EQ(index->positions[2][15], 15);
  EXPECT_EQ(index->positions[0][405], 15);
  EXPECT_EQ(index->positions[1][405], 31);
  EXPECT_EQ(index->positions[2][405], 37);
  // Second image row starts at h = 16, w = 15.
  EXPECT_EQ(index->positions[1][15 + 23], 16);
  EXPECT_EQ(index->positions[2][15 + 23], 15);
  for (int s = 0; s < 3; ++s) EXPECT_EQ(index->positions[s][406], 38);  // <|vision_end|>
  EXPECT_EQ(index->positions[0][412], 44);
  EXPECT_EQ(index->rope_delta, -368);
  EXPECT_EQ(413 + index->rope_delta, 45);  // first generated token
}

TEST(model, RopeIndexTwoImages) {
  ModelConfig c = MakeTinyConfig();
  const int64_t vs = c.vision_start_token_id, img = c.image_token_id, ve = c.vision_end_token_id;
  // text(2) | vs | 2x3 cells | ve | text(1) | vs | 1x2 cells | ve
  std::vector<int64_t> ids = {1, 2, vs, img, img, img, img, img, img, ve, 3, vs, img, img, ve};
  auto index = ComputeRopeIndex(ids, {{1, 4, 6}, {1, 2, 4}}, c, 15);
  ASSERT_TRUE(index.ok()) << index.status();
  // First image at base 3: h 3..4, w 3..5; then ve = 3 + max(2, 3) = 6, text 7, vs 8.
  EXPECT_EQ(index->positions[1][8], 4);
  EXPECT_EQ(index->positions[2][8], 5);
  EXPECT_EQ(index->positions[0][9], 6);
  EXPECT_EQ(index->positions[0][11], 8);
  // Second image at base 9: t 9, h 9, w 9..10; ve = 9 + 2 = 11.
  EXPECT_EQ(index->positions[0][13], 9);
  EXPECT_EQ(index->positions[2][13], 10);
  EXPECT_EQ(index->positions[1][14], 11);
  EXPECT_EQ(index->rope_delta, 12 - 15);
}

TEST(model, RopeIndexTextOnlyAndPadding) {
  ModelConfig c = MakeTinyConfig();
  auto index = ComputeRopeIndex({1, 2, 3, 4}, {}, c, /*padded_length=*/6);
  ASSERT_TRUE(index.ok());
  EXPECT_EQ(index->positions[1], (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(index->rope_delta, -2);  // decode at cache position 6 -> position 4
}

TEST(model, RopeIndexRejectsWrongImageTokenCount) {
  ModelConfig c = MakeTinyConfig();
  std::vector<int64_t> ids = {1, c.vision_start_token_id, c.image_token_id, c.image_token_id, c.vision_end_token_id};
  auto index = ComputeRopeIndex(ids, {{1, 4, 4}}, c, 5);  // needs 4 pads
  EXPECT_FALSE(index.ok());
  EXPECT_FALSE(ComputeRopeIndex(ids, {}, c, 5).ok());  // one image, no grid
}

// reference §4.3: 476x644 image -> grid 34x46 -> 17x23 cells -> 5x6 = 30 windows.
TEST(model, WindowIndexMatchesReferenceExample) {
  auto config = ParseModelConfig(kFlat7B);
  ASSERT_TRUE(config.ok());
  WindowIndex w = ComputeWindowIndex({{1, 34, 46}}, config->vision);
  ASSERT_EQ(w.cu_window_seqlens.size(), 31u);
  EXPECT_EQ(std::vector<int64_t>(w.cu_window_seqlens.begin(), w.cu_window_seqlens.begin() + 7),
            (std::vector<int64_t>{0, 64, 128, 192, 256, 320, 368}));
  EXPECT_EQ(w.cu_window_seqlens.back(), 1564);
  // A permutation of the 391 cells; the first window is cells (0..3) x (0..3).
  ASSERT_EQ(w.window_index.size(), 391u);
  std::vector<int64_t> sorted = w.window_index;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> iota(391);
  std::iota(iota.begin(), iota.end(), 0);
  EXPECT_EQ(sorted, iota);
  EXPECT_EQ(std::vector<int64_t>(w.window_index.begin(), w.window_index.begin() + 6),
            (std::vector<int64_t>{0, 1, 2, 3, 23, 24}));
  // Last window (rows 16, cols 20..22): 3 cells.
  EXPECT_EQ(std::vector<int64_t>(w.window_index.end() - 3, w.window_index.end()),
            (std::vector<int64_t>{388, 389, 390}));

  // 224x224 -> 8x8 cells -> 4 windows of 16 cells (HF pads a full empty window row/col, then drops it).
  WindowIndex square = ComputeWindowIndex({{1, 16, 16}}, config->vision);
  EXPECT_EQ(square.cu_window_seqlens, (std::vector<int64_t>{0, 64, 128, 192, 256}));
}

TEST(model, WindowIndexOffsetsLaterImages) {
  ModelConfig c = MakeTinyConfig();
  WindowIndex w = ComputeWindowIndex({{1, 4, 4}, {1, 2, 4}}, c.vision);
  EXPECT_EQ(w.window_index, (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(w.cu_window_seqlens, (std::vector<int64_t>{0, 16, 24}));
  EXPECT_EQ(ComputeFullAttentionSeqlens({{1, 4, 4}, {2, 2, 4}}), (std::vector<int64_t>{0, 16, 24, 32}));
}

TEST(model, PatchCoordinatesFollowMergeOrder) {
  PatchCoordinates p = ComputePatchCoordinates({{1, 4, 4}}, 2);
  EXPECT_EQ(std::vector<int64_t>(p.rows.begin(), p.rows.begin() + 8), (std::vector<int64_t>{0, 0, 1, 1, 0, 0, 1, 1}));
  EXPECT_EQ(std::vector<int64_t>(p.cols.begin(), p.cols.begin() + 8), (std::vector<int64_t>{0, 1, 0, 1, 2, 3, 2, 3}));
}

}  // namespace
}  // namespace r1r::model
