#include "tests/unit/orchestrator/orchestrator_world.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "common/files/remove_tree.h"

namespace r1r::orchestrator {
namespace fs = std::filesystem;

OrchestratorWorld::OrchestratorWorld(const std::string& name)
    : root((fs::path(::testing::TempDir()) / ("r1r_orchestrator_" + name)).string()),
      data_root(root + "/data"),
      work_root(root + "/work") {
  EXPECT_TRUE(files::RemoveTree(root).ok()) << root;
  fs::create_directories(data_root);
  fs::create_directories(work_root);
  auto opened = jobs::JobStore::Open(root + "/state");
  EXPECT_TRUE(opened.ok()) << opened.status();
  if (opened.ok()) store = std::move(*opened);
  auto data = files::Roots::Make({{"data-root", data_root}});
  auto work = files::Roots::Make({{"work-root", work_root}});
  EXPECT_TRUE(data.ok() && work.ok());
  if (data.ok()) roots.data = *data;
  if (work.ok()) roots.work = *work;
}

std::string TinySpecYaml(const std::string& extra) {
  return "name: tiny\n"
         "model: {init: tiny, device: cpu, dtype: float32}\n"
         "tokenizer: {train_vocab_size: 300}\n"
         "data: {source: synthetic, synthetic_n: 8}\n" +
         extra;
}

}  // namespace r1r::orchestrator
