// Host memory stays bounded: the processed-image cache is an LRU bounded in bytes, the spec's pixel
// limits override a checkpoint's preprocessor_config.json, and old checkpoints are pruned without ever
// deleting the one a resume loads.
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/files/remove_tree.h"
#include "common/train/checkpoint.h"
#include "common/train/policy.h"
#include "tests/unit/train/tiny_world.h"

namespace r1r::train {
namespace {

namespace fs = std::filesystem;
using testing::LoadPolicy;
using testing::World;

std::string ImagePath(int i) { return World().data_dir + "/" + World().items.at(static_cast<size_t>(i)).sample.image_path; }

TEST(train, ImageCacheIsAnLruBoundedInBytes) {
  auto policy = LoadPolicy();
  PromptEncoder& encoder = policy->encoder();
  auto first = encoder.LoadImage(ImagePath(0));
  ASSERT_TRUE(first.ok()) << first.status();
  const int64_t one = static_cast<int64_t>(first->pixel_values.nbytes());
  EXPECT_EQ(encoder.image_cache_bytes(), one);
  encoder.set_image_cache_limit(2 * one + one / 2);  // room for two images
  ASSERT_TRUE(encoder.LoadImage(ImagePath(1)).ok());
  ASSERT_TRUE(encoder.LoadImage(ImagePath(0)).ok());  // 0 is now the most recently used
  ASSERT_TRUE(encoder.LoadImage(ImagePath(2)).ok());  // evicts 1, the least recently used
  EXPECT_EQ(encoder.image_cache_entries(), 2);
  EXPECT_LE(encoder.image_cache_bytes(), 2 * one + one / 2);
  EXPECT_EQ(encoder.image_cache_evictions(), 1);
  ASSERT_TRUE(encoder.LoadImage(ImagePath(0)).ok());  // a hit: nothing evicted
  EXPECT_EQ(encoder.image_cache_evictions(), 1);
  ASSERT_TRUE(encoder.LoadImage(ImagePath(1)).ok());  // a miss: evicts 2
  EXPECT_EQ(encoder.image_cache_evictions(), 2);
  for (int i = 3; i < 12; ++i) ASSERT_TRUE(encoder.LoadImage(ImagePath(i)).ok());
  EXPECT_LE(encoder.image_cache_bytes(), 2 * one + one / 2);
  encoder.set_image_cache_limit(0);
  EXPECT_EQ(encoder.image_cache_bytes(), 0);
  EXPECT_EQ(encoder.image_cache_entries(), 0);
}

TEST(train, SpecPixelLimitsOverrideThePreprocessorConfig) {
  const std::string dir = World().root + "/pixel_limits_model";
  ASSERT_TRUE(files::RemoveTree(dir).ok());
  fs::create_directories(dir);
  for (const auto& entry : fs::directory_iterator(World().model_dir)) {
    fs::copy_file(entry.path(), fs::path(dir) / entry.path().filename());
  }
  {  // What a Hugging Face checkpoint ships: 12.8 MP, in both spellings.
    nlohmann::json j;
    std::ifstream(dir + "/preprocessor_config.json") >> j;
    j["max_pixels"] = 12845056;
    j["size"] = {{"shortest_edge", 3136}, {"longest_edge", 12845056}};
    std::ofstream(dir + "/preprocessor_config.json") << j.dump();
  }
  // The world's images are 56 x 56: 4 merged tokens at 12.8 MP, 1 at the spec's 784 pixels.
  auto before = Policy::Load(dir, model::ModelOptions{});
  ASSERT_TRUE(before.ok()) << before.status();
  auto big = (*before)->encoder().LoadImage(ImagePath(0));
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->ids.size(), 4u);
  ASSERT_TRUE(ApplyPixelLimits(dir, 784, 784).ok());
  nlohmann::json written;
  std::ifstream(dir + "/preprocessor_config.json") >> written;
  EXPECT_EQ(written["max_pixels"], 784);
  EXPECT_EQ(written["size"]["longest_edge"], 784);
  auto after = Policy::Load(dir, model::ModelOptions{});
  ASSERT_TRUE(after.ok()) << after.status();
  auto small = (*after)->encoder().LoadImage(ImagePath(0));
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(small->ids.size(), 1u);
  // A published model carries the limits (checkpoints and exports copy preprocessor_config.json).
  const std::string exported = World().root + "/pixel_limits_export";
  ASSERT_TRUE(ExportModelDir(**after, exported).ok());
  nlohmann::json published;
  std::ifstream(exported + "/preprocessor_config.json") >> published;
  EXPECT_EQ(published["max_pixels"], 784);
  EXPECT_FALSE(ApplyPixelLimits(dir, 1000, 10).ok());
}

TEST(train, PruningKeepsTheNewestAndNeverTheResumeCheckpoint) {
  const std::string root = World().root + "/prune";
  ASSERT_TRUE(files::RemoveTree(root).ok());
  for (int step = 1; step <= 5; ++step) {
    fs::create_directories(root + "/step-" + std::to_string(step));
    std::ofstream(root + "/step-" + std::to_string(step) + "/state.json") << "{}";
  }
  fs::create_directories(root + "/unrelated");
  std::ofstream(root + "/LATEST") << "step-2";  // a resume would load step-2
  auto deleted = PruneCheckpoints(root, 2);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(deleted->size(), 3u);
  EXPECT_TRUE(fs::exists(root + "/step-2"));  // what LATEST names stays
  EXPECT_TRUE(fs::exists(root + "/step-5"));
  EXPECT_FALSE(fs::exists(root + "/step-1"));
  EXPECT_FALSE(fs::exists(root + "/step-3"));
  EXPECT_FALSE(fs::exists(root + "/step-4"));
  EXPECT_TRUE(fs::exists(root + "/unrelated"));
  auto latest = LatestCheckpoint(root);
  ASSERT_TRUE(latest.ok());
  // keep 0: nothing is deleted.
  EXPECT_TRUE(PruneCheckpoints(root, 0)->empty());
  // With the newest as LATEST, the newest K stay.
  std::ofstream(root + "/LATEST", std::ios::trunc) << "step-5";
  ASSERT_TRUE(PruneCheckpoints(root, 1).ok());
  EXPECT_TRUE(fs::exists(root + "/step-5"));
  EXPECT_FALSE(fs::exists(root + "/step-2"));
}

}  // namespace
}  // namespace r1r::train
