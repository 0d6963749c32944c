// Safetensors IO and checkpoint save/load: bit-exact round trips, HF key layouts, and corrupt input
// producing errors that name the tensor.
#include <filesystem>
#include <fstream>
#include <string>

#include "common/files/remove_tree.h"
#include "common/model/modules.h"
#include "common/model/safetensors.h"
#include "common/model/weights.h"
#include "tests/unit/model/test_util.h"

namespace r1r::model {
namespace {

using testing::MakeTinyModel;
namespace fs = std::filesystem;

std::string TempDir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("r1r_model_test_" + name + "_" + std::to_string(::getpid()));
  EXPECT_TRUE(r1r::files::RemoveTree(dir).ok()) << dir;
  fs::create_directories(dir);
  return dir.string();
}

void ExpectSameParameters(Qwen2_5_VL& a, Qwen2_5_VL& b) {
  auto pa = a.named_parameters();
  auto pb = b.named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& item : pa) {
    const at::Tensor* other = pb.find(item.key());
    ASSERT_NE(other, nullptr) << item.key();
    EXPECT_EQ(item.value().scalar_type(), other->scalar_type());
    EXPECT_TRUE(torch::equal(item.value(), *other)) << item.key();
  }
}

TEST(model, ParameterNamesFollowHfLayout) {
  auto model = MakeTinyModel();
  TensorMap w = ExportWeights(*model);
  const ModelConfig& c = model->config();
  for (const char* key : {"model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.bias",
                          "model.layers.1.mlp.down_proj.weight", "model.norm.weight", "lm_head.weight",
                          "visual.patch_embed.proj.weight", "visual.blocks.1.attn.qkv.bias",
                          "visual.blocks.0.mlp.gate_proj.bias", "visual.merger.ln_q.weight",
                          "visual.merger.mlp.0.weight", "visual.merger.mlp.2.bias"}) {
    EXPECT_EQ(w.count(key), 1u) << key;
  }
  EXPECT_EQ(w.count("model.layers.0.self_attn.o_proj.bias"), 0u);
  EXPECT_EQ(w["visual.patch_embed.proj.weight"].sizes(),
            (std::vector<int64_t>{c.vision.hidden_size, 3, 2, 14, 14}));
  EXPECT_EQ(w["model.layers.0.self_attn.k_proj.weight"].sizes(),
            (std::vector<int64_t>{c.text.num_key_value_heads * c.text.head_dim, c.text.hidden_size}));
  // text: embed + norm + 2 layers x 12 + lm_head; vision: patch + 2 blocks x 12 + merger 5.
  EXPECT_EQ(w.size(), static_cast<size_t>(1 + 1 + 2 * 12 + 1 + 1 + 2 * 12 + 5));
  auto tied = MakeTinyModel({.tie_word_embeddings = true});
  EXPECT_EQ(ExportWeights(*tied).count("lm_head.weight"), 0u);
  EXPECT_TRUE(tied->output_weight().is_same(tied->text().embed_tokens->weight));
}

TEST(model, SaveLoadRoundTripIsBitExact) {
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    for (bool tied : {false, true}) {
      auto model = MakeTinyModel({.tie_word_embeddings = tied}, dtype, /*seed=*/11);
      const std::string dir = TempDir("roundtrip");
      ASSERT_TRUE(SaveCheckpoint(*model, dir).ok());
      ASSERT_TRUE(fs::exists(dir + "/config.json"));
      ASSERT_TRUE(fs::exists(dir + "/model.safetensors"));
      auto loaded = LoadPretrained(dir, ModelOptions{dtype, at::kCPU});
      ASSERT_TRUE(loaded.ok()) << loaded.status();
      ExpectSameParameters(*model, **loaded);
      auto raw = ReadSafetensors(dir + "/model.safetensors");
      ASSERT_TRUE(raw.ok());
      EXPECT_EQ(raw->count("lm_head.weight"), tied ? 0u : 1u);
      EXPECT_EQ(raw->at("model.norm.weight").scalar_type(), dtype);
      r1r::files::RemoveTree(dir).IgnoreError();
    }
  }
}

TEST(model, ShardedCheckpointRoundTrip) {
  auto model = MakeTinyModel();
  const std::string dir = TempDir("sharded");
  ASSERT_TRUE(SaveCheckpoint(*model, dir, /*max_shard_bytes=*/200 * 1024).ok());
  ASSERT_TRUE(fs::exists(dir + "/model.safetensors.index.json"));
  int shards = 0;
  for (const auto& e : fs::directory_iterator(dir)) shards += e.path().filename().string().rfind("model-0000", 0) == 0;
  EXPECT_GE(shards, 2);
  EXPECT_FALSE(fs::exists(dir + "/model.safetensors"));
  auto loaded = LoadPretrained(dir, {});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ExpectSameParameters(*model, **loaded);
  r1r::files::RemoveTree(dir).IgnoreError();
}

TEST(model, SingleFileCheckpointIgnoresOtherSafetensorsBesideIt) {
  // As transformers: model.safetensors is the checkpoint; a test-case file next to it is not weights.
  auto model = MakeTinyModel();
  const std::string dir = TempDir("single_plus_extra");
  ASSERT_TRUE(SaveCheckpoint(*model, dir).ok());
  ASSERT_TRUE(fs::exists(dir + "/model.safetensors"));
  ASSERT_TRUE(WriteSafetensors(dir + "/cases.safetensors", {{"image.logits", torch::ones({2, 3})}}).ok());
  auto tensors = ReadCheckpointTensors(dir);
  ASSERT_TRUE(tensors.ok()) << tensors.status();
  EXPECT_EQ(tensors->count("image.logits"), 0u);
  auto loaded = LoadPretrained(dir, {});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ExpectSameParameters(*model, **loaded);
  // Without model.safetensors every file is a shard, so the stray tensor is read (and then refused).
  fs::remove(dir + "/model.safetensors");
  ASSERT_TRUE(WriteSafetensors(dir + "/weights.safetensors", ExportWeights(*model)).ok());
  auto all = ReadCheckpointTensors(dir);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->count("image.logits"), 1u);
  r1r::files::RemoveTree(dir).IgnoreError();
}

TEST(model, LoadsNewerTransformersKeyLayout) {
  auto model = MakeTinyModel();
  TensorMap renamed;
  for (const auto& [key, t] : ExportWeights(*model)) {
    std::string k = key;
    if (k.rfind("model.", 0) == 0) k = "model.language_model." + k.substr(6);
    if (k.rfind("visual.", 0) == 0) k = "model." + k;
    renamed[k] = t.to(at::kBFloat16).to(at::kFloat);  // also exercise dtype conversion on load
  }
  EXPECT_EQ(NormalizeCheckpointKey("model.language_model.layers.3.mlp.up_proj.weight"), "model.layers.3.mlp.up_proj.weight");
  EXPECT_EQ(NormalizeCheckpointKey("model.visual.blocks.0.norm1.weight"), "visual.blocks.0.norm1.weight");
  EXPECT_EQ(NormalizeCheckpointKey("language_model.lm_head.weight"), "lm_head.weight");
  auto target = Qwen2_5_VL::CreateUninitialized(model->config(), {});
  ASSERT_TRUE(target.ok());
  ASSERT_TRUE(LoadWeights(**target, renamed).ok());
  EXPECT_TRUE(torch::equal((*target)->text().norm->weight, renamed["model.language_model.norm.weight"]));
}

TEST(model, MissingOrMisshapenTensorIsNamed) {
  auto model = MakeTinyModel();
  TensorMap w = ExportWeights(*model);
  TensorMap missing = w;
  missing.erase("model.layers.1.self_attn.v_proj.bias");
  absl::Status st = LoadWeights(*model, missing);
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(st.message()).find("model.layers.1.self_attn.v_proj.bias"), std::string::npos) << st;

  TensorMap wrong = w;
  wrong["visual.merger.mlp.2.weight"] = torch::zeros({3, 3});
  st = LoadWeights(*model, wrong);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(std::string(st.message()).find("visual.merger.mlp.2.weight"), std::string::npos) << st;

  TensorMap extra = w;
  extra["model.layers.9.mlp.up_proj.weight"] = torch::zeros({1});
  st = LoadWeights(*model, extra);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(std::string(st.message()).find("model.layers.9.mlp.up_proj.weight"), std::string::npos) << st;
}

TEST(model, TruncatedSafetensorsNamesTensor) {
  const std::string dir = TempDir("truncated");
  const std::string path = dir + "/t.safetensors";
  TensorMap t = {{"a.weight", torch::ones({4, 4})}, {"b.weight", torch::ones({8, 8})}};
  ASSERT_TRUE(WriteSafetensors(path, t).ok());
  fs::resize_file(path, fs::file_size(path) - 10);
  auto read = ReadSafetensors(path);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(std::string(read.status().message()).find("b.weight"), std::string::npos) << read.status();
  fs::resize_file(path, 5);
  EXPECT_EQ(ReadSafetensors(path).status().code(), absl::StatusCode::kDataLoss);
  r1r::files::RemoveTree(dir).IgnoreError();
}

// Writes a file with a hand-made header.
void WriteRaw(const std::string& path, const std::string& header, size_t data_bytes) {
  std::ofstream out(path, std::ios::binary);
  uint64_t n = header.size();
  out.write(reinterpret_cast<const char*>(&n), 8);  // little-endian host
  out << header;
  out << std::string(data_bytes, '\0');
}

TEST(model, CorruptSafetensorsHeaderIsRejected) {
  const std::string dir = TempDir("corrupt");
  const std::string path = dir + "/c.safetensors";
  WriteRaw(path, R"({"x": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}})", 16);
  auto r = ReadSafetensors(path);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(std::string(r.status().message()).find("'x'"), std::string::npos) << r.status();

  WriteRaw(path, R"({"y": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 2]}})", 2);
  r = ReadSafetensors(path);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(std::string(r.status().message()).find("'y'"), std::string::npos) << r.status();

  WriteRaw(path, R"({"u": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                     "v": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})", 12);
  r = ReadSafetensors(path);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(std::string(r.status().message()).find("overlaps"), std::string::npos) << r.status();

  WriteRaw(path, "{garbage", 0);
  EXPECT_EQ(ReadSafetensors(path).status().code(), absl::StatusCode::kDataLoss);

  // A dtype nested 200k deep (400 KB of header): named by its type, not dumped (SIGSEGV before).
  WriteRaw(path, R"({"d": {"shape": [1], "data_offsets": [0, 4], "dtype": )" + std::string(200000, '[') +
                     std::string(200000, ']') + "}}",
           4);
  r = ReadSafetensors(path);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(std::string(r.status().message()).find("unsupported dtype array"), std::string::npos) << r.status();

  // Header length field pointing far past the end.
  {
    std::ofstream out(path, std::ios::binary);
    uint64_t n = 1ull << 40;
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << "{}";
  }
  EXPECT_EQ(ReadSafetensors(path).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ReadSafetensors(dir + "/absent.safetensors").status().code(), absl::StatusCode::kNotFound);
  r1r::files::RemoveTree(dir).IgnoreError();
}

TEST(model, SafetensorsReadsF16AndBf16) {
  const std::string dir = TempDir("dtypes");
  const std::string path = dir + "/d.safetensors";
  at::Tensor base = torch::arange(6, torch::kFloat).view({2, 3}) / 4;
  TensorMap t = {{"h", base.to(at::kHalf)}, {"b", base.to(at::kBFloat16)}, {"f", base}};
  ASSERT_TRUE(WriteSafetensors(path, t).ok());
  auto r = ReadSafetensors(path);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->at("h").scalar_type(), at::kHalf);
  EXPECT_EQ(r->at("b").scalar_type(), at::kBFloat16);
  EXPECT_TRUE(torch::equal(r->at("h").to(at::kFloat), base));
  EXPECT_TRUE(torch::equal(r->at("b").to(at::kFloat), base));
  EXPECT_TRUE(torch::equal(r->at("f"), base));
  // Copy-on-write mapping: writing into a read tensor must not change the file.
  r->at("f").fill_(7);
  auto again = ReadSafetensors(path);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(torch::equal(again->at("f"), base));
  r1r::files::RemoveTree(dir).IgnoreError();
}

}  // namespace
}  // namespace r1r::model
