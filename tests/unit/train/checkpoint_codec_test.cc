// Checkpoints restore weights and optimizer state exactly; the weight wire codec round-trips and
// its CRC32C catches a flipped byte.
#include <torch/torch.h>

#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/model/weights.h"
#include "common/train/checkpoint.h"
#include "common/train/sha256.h"
#include "common/train/weight_codec.h"
#include "tests/unit/train/tiny_world.h"

namespace r1r::train {
namespace {

namespace fs = std::filesystem;
using testing::LoadPolicy;
using testing::MakeSftItems;
using testing::World;

OptimizerOptions Options() {
  OptimizerOptions o;
  o.lr = 1e-3;
  o.warmup_ratio = 0.5;
  o.total_steps = 6;
  o.weight_decay = 0.01;
  return o;
}

void ExpectBitExact(Policy& a, Policy& b) {
  auto pa = a.model().named_parameters();
  auto pb = b.model().named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& item : pa) {
    const at::Tensor* other = pb.find(item.key());
    ASSERT_NE(other, nullptr) << item.key();
    EXPECT_TRUE(torch::equal(item.value(), *other)) << item.key();
  }
}

TEST(train, CheckpointRoundTripIsBitExactIncludingOptimizer) {
  auto policy = LoadPolicy();
  auto items = MakeSftItems(*policy, 4, 2);
  Trainer trainer(policy.get(), nullptr, Options());
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(trainer.SftStep(items).ok());
  const std::string root = World().root + "/ckpt_roundtrip";
  auto dir = SaveTrainingCheckpoint(root, 2, *policy, &trainer, R"({"policy_version": 3})");
  ASSERT_TRUE(dir.ok()) << dir.status();
  EXPECT_TRUE(fs::exists(*dir + "/model.safetensors"));
  EXPECT_TRUE(fs::exists(*dir + "/tokenizer.json"));
  EXPECT_TRUE(fs::exists(*dir + "/config.json"));
  auto latest = LatestCheckpoint(root);
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(*latest, *dir);

  auto restored = LoadPolicy();  // initial weights: differ from the trained ones
  Trainer restored_trainer(restored.get(), nullptr, Options());
  auto state = LoadTrainingCheckpoint(*latest, *restored, &restored_trainer);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(*state, R"({"policy_version": 3})");
  restored_trainer.set_steps_done(trainer.steps_done());
  ExpectBitExact(*policy, *restored);

  // Same optimizer moments and step counts: one more identical step gives identical weights.
  auto a = trainer.SftStep(items);
  auto b = restored_trainer.SftStep(items);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->learning_rate, b->learning_rate);
  EXPECT_EQ(a->loss, b->loss);
  ExpectBitExact(*policy, *restored);

  // Without the optimizer state the next step differs (the test above can fail).
  auto fresh = LoadPolicy();
  Trainer fresh_trainer(fresh.get(), nullptr, Options());
  ASSERT_TRUE(LoadTrainingCheckpoint(*latest, *fresh, nullptr).ok());
  fresh_trainer.set_steps_done(2);
  ASSERT_TRUE(fresh_trainer.SftStep(items).ok());
  bool differs = false;
  auto pa = policy->model().parameters();
  auto pf = fresh->model().parameters();
  for (size_t i = 0; i < pa.size(); ++i) differs = differs || !torch::equal(pa[i], pf[i]);
  EXPECT_TRUE(differs);
}

TEST(train, LatestCheckpointIsNotFoundOnAnEmptyRoot) {
  EXPECT_EQ(LatestCheckpoint(World().root + "/no_such_ckpt").status().code(), absl::StatusCode::kNotFound);
}

TEST(train, ExportModelDirIsLoadable) {
  auto policy = LoadPolicy();
  const std::string dir = World().root + "/export";
  ASSERT_TRUE(ExportModelDir(*policy, dir).ok());
  auto loaded = Policy::Load(dir, model::ModelOptions{});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ExpectBitExact(*policy, **loaded);
}

TEST(train, WeightCodecRoundTripsFloatAndBfloat16) {
  auto policy = LoadPolicy();
  model::TensorMap tensors = model::ExportWeights(policy->model());
  tensors["extra.bf16"] = torch::randn({3, 5}).to(torch::kBFloat16);
  tensors["extra.empty"] = torch::zeros({0, 4});
  auto wire = EncodeTensors(tensors);
  ASSERT_TRUE(wire.ok()) << wire.status();
  ASSERT_EQ(wire->size(), tensors.size());
  auto decoded = DecodeTensors(*wire);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_EQ(decoded->size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    ASSERT_TRUE(decoded->count(name)) << name;
    EXPECT_EQ(decoded->at(name).scalar_type(), t.scalar_type()) << name;
    EXPECT_TRUE(torch::equal(decoded->at(name), t)) << name;
  }
  // Loading the decoded weights into an uninitialised replica reproduces the policy.
  auto replica = Policy::Load(World().model_dir, model::ModelOptions{}, /*with_weights=*/false);
  ASSERT_TRUE(replica.ok()) << replica.status();
  decoded->erase("extra.bf16");
  decoded->erase("extra.empty");
  ASSERT_TRUE(model::LoadWeights((*replica)->model(), *decoded).ok());
  ExpectBitExact(*policy, **replica);
}

TEST(train, WeightCodecChecksumDetectsAFlippedByteAndSizeMismatch) {
  model::TensorMap tensors = {{"a", torch::arange(64, torch::kFloat)}, {"b", torch::ones({2, 3})}};
  auto wire = EncodeTensors(tensors);
  ASSERT_TRUE(wire.ok());
  auto crc_of = [](const std::vector<WireTensor>& w) {
    uint32_t crc = 0;
    for (const auto& t : w) crc = Crc32c(crc, t.bytes.data(), t.bytes.size());
    return crc;
  };
  const uint32_t clean = crc_of(*wire);
  auto corrupted = *wire;
  corrupted[0].bytes[17] ^= 0x04;
  EXPECT_NE(crc_of(corrupted), clean);
  // CRC32C check value of "123456789" (RFC 3720).
  EXPECT_EQ(Crc32c(0, "123456789", 9), 0xE3069283u);
  // Chunked accumulation equals one pass.
  const std::string& bytes = (*wire)[0].bytes;
  EXPECT_EQ(Crc32c(Crc32c(0, bytes.data(), 100), bytes.data() + 100, bytes.size() - 100),
            Crc32c(0, bytes.data(), bytes.size()));
  auto truncated = *wire;
  truncated[1].bytes.pop_back();
  EXPECT_EQ(DecodeTensors(truncated).status().code(), absl::StatusCode::kDataLoss);
  auto bad_dtype = *wire;
  bad_dtype[0].dtype = "I8";
  EXPECT_EQ(DecodeTensors(bad_dtype).status().code(), absl::StatusCode::kInvalidArgument);
  // A shape whose size overflows int64 (or would need terabytes) is refused before any allocation.
  auto hostile = *wire;
  hostile[1].shape = {int64_t{1} << 40, int64_t{1} << 40, 16};
  const auto refused = DecodeTensors(hostile);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(refused.status().message()), ::testing::HasSubstr("b: 24 bytes for a larger shape"));
  EXPECT_EQ(EncodeTensors({{"i", torch::ones({2}, torch::kLong)}}).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace r1r::train

namespace r1r::train {
namespace {

// Bit-at-a-time CRC32C: the definition, against which the fast paths are checked.
uint32_t Crc32cReference(const std::string& bytes) {
  uint32_t crc = ~0u;
  for (unsigned char c : bytes) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
  }
  return ~crc;
}

TEST(train, Crc32cMatchesTheBitwiseDefinitionAtEverySizeAndAlignment) {
  std::string bytes(300, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 131 + 7) & 0xFF);
  for (size_t offset : {0, 1, 3}) {
    for (size_t size : {0, 1, 7, 8, 9, 63, 64, 65, 255}) {
      const std::string part = bytes.substr(offset, size);
      EXPECT_EQ(Crc32c(0, part.data(), part.size()), Crc32cReference(part)) << offset << "+" << size;
    }
  }
}

}  // namespace
}  // namespace r1r::train

namespace r1r::train {
namespace {

TEST(train, TensorAssemblerRebuildsChunkedTensorsAndRejectsTornStreams) {
  model::TensorMap tensors = {{"a", torch::randn({5, 7})}, {"b", torch::randn({3}).to(torch::kBFloat16)}};
  TensorAssembler assembler;
  for (const auto& [name, t] : tensors) {
    auto view = ViewTensor(name, t);
    ASSERT_TRUE(view.ok());
    ASSERT_TRUE(assembler.Begin(view->name, view->dtype, view->shape).ok());
    for (size_t off = 0; off < view->size; off += 16) {
      ASSERT_TRUE(assembler.Append(static_cast<int64_t>(off), view->data + off, std::min<size_t>(16, view->size - off)).ok());
    }
  }
  auto out = assembler.Finish();
  ASSERT_TRUE(out.ok()) << out.status();
  for (const auto& [name, t] : tensors) EXPECT_TRUE(torch::equal(out->at(name), t)) << name;

  const float data[4] = {1, 2, 3, 4};
  TensorAssembler gap;
  ASSERT_TRUE(gap.Begin("x", "F32", {4}).ok());
  EXPECT_EQ(gap.Append(4, data, 4).code(), absl::StatusCode::kDataLoss);  // skips bytes 0..3
  TensorAssembler overflow;
  ASSERT_TRUE(overflow.Begin("x", "F32", {2}).ok());
  EXPECT_EQ(overflow.Append(0, data, 16).code(), absl::StatusCode::kDataLoss);
  TensorAssembler torn;
  ASSERT_TRUE(torn.Begin("x", "F32", {4}).ok());
  ASSERT_TRUE(torn.Append(0, data, 8).ok());
  EXPECT_EQ(torn.Begin("y", "F32", {1}).code(), absl::StatusCode::kDataLoss);  // x incomplete
  EXPECT_EQ(torn.Finish().status().code(), absl::StatusCode::kDataLoss);
  TensorAssembler twice;
  ASSERT_TRUE(twice.Begin("x", "F32", {0}).ok());
  EXPECT_EQ(twice.Begin("x", "F32", {0}).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(TensorAssembler().Begin("x", "I64", {1}).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace r1r::train

namespace r1r::train {
namespace {

TEST(train, Sha256MatchesPublishedVectorsAndGuardsImages) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // 56 bytes: the padding spills into a second block.
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Sha256Hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");

  auto policy = testing::LoadPolicy();
  const auto& sample = World().items[0].sample;
  const std::string path = World().data_dir + "/" + sample.image_path;
  auto digest = Sha256HexOfFile(path);
  ASSERT_TRUE(digest.ok()) << digest.status();
  EXPECT_TRUE(policy->encoder().VerifyImage(path, "").ok());
  EXPECT_TRUE(policy->encoder().VerifyImage(path, *digest).ok());
  std::string wrong = *digest;
  wrong[0] = wrong[0] == '0' ? '1' : '0';
  EXPECT_EQ(policy->encoder().VerifyImage(path, wrong).code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace r1r::train
