// A job's data preparation (common/data/prepare.h): the splits, their determinism (a resumed job must
// see the same ones), errors that name the spec field, and the tokenizer kept on resume.
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <absl/strings/str_cat.h>
#include <gtest/gtest.h>

#include "common/config/job_spec.h"
#include "common/data/prepare.h"
#include "common/files/remove_tree.h"
#include "common/reward/prompt_layout.h"

namespace r1r::data {
namespace {

namespace fs = std::filesystem;

std::string FreshDir(const std::string& name) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("r1r_data_prep_" + name);
  EXPECT_TRUE(files::RemoveTree(dir).ok()) << dir;
  fs::create_directories(dir);
  return dir.string();
}

config::JobSpec Spec(const std::string& data_yaml, const std::string& tokenizer_yaml = "{train_vocab_size: 300}") {
  auto spec = config::ParseJobSpec(absl::StrCat("name: t\nmodel: {init: tiny, device: cpu, dtype: float32}\n",
                                                "tokenizer: ", tokenizer_yaml, "\ndata: ", data_yaml, "\n"));
  EXPECT_TRUE(spec.ok()) << spec.status();
  return spec.ok() ? *spec : config::JobSpec{};
}

std::vector<std::string> Ids(const std::vector<PreferenceSample>& set) {
  std::vector<std::string> ids;
  for (const auto& s : set) ids.push_back(s.id);
  return ids;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(data, PrepareSplitsASyntheticSetTheSameWayOnEveryRun) {
  const config::JobSpec spec = Spec("{source: synthetic, synthetic_n: 40, seed: 3, heldout_fraction: 0.25}");
  auto first = PrepareData(spec, FreshDir("synth_a"));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->heldout.size(), 10u);
  EXPECT_EQ(first->sft.size() + first->rl.size(), 30u);  // rest + hard: every training row once
  EXPECT_FALSE(first->sft.empty());
  EXPECT_FALSE(first->rl.empty());
  EXPECT_EQ(first->bad_rows, 0);
  EXPECT_EQ(first->report, absl::StrCat("40 samples (0 bad rows skipped): ", first->sft.size(), " SFT, ",
                                        first->rl.size(), " RL, 10 held-out"));
  std::set<std::string> train;
  for (const auto* set : {&first->sft, &first->rl}) {
    for (const auto& s : *set) train.insert(s.id);
  }
  for (const auto& s : first->heldout) EXPECT_EQ(train.count(s.id), 0u) << s.id << " is held out and trained on";
  // Another work dir (the dataset written again from the seed) gives the same splits in the same order.
  auto second = PrepareData(spec, FreshDir("synth_b"));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(Ids(second->heldout), Ids(first->heldout));
  EXPECT_EQ(Ids(second->sft), Ids(first->sft));
  EXPECT_EQ(Ids(second->rl), Ids(first->rl));
}

TEST(data, PrepareNamesTheDataPathItCannotRead) {
  const std::string dir = FreshDir("missing");
  auto prepared = PrepareData(Spec(absl::StrCat("{source: pairs_jsonl, path: ", dir, "/absent.jsonl}")), dir);
  ASSERT_FALSE(prepared.ok());
  EXPECT_EQ(std::string(prepared.status().message()).rfind("data.path: ", 0), 0u) << prepared.status();
}

TEST(data, PrepareRefusesAFileWithoutAUsableRow) {
  const std::string dir = FreshDir("no_rows");
  std::ofstream(dir + "/pairs.jsonl") << "{\"id\": 1}\nnot json\n";
  auto prepared = PrepareData(Spec(absl::StrCat("{source: pairs_jsonl, path: ", dir, "/pairs.jsonl}")), dir);
  EXPECT_EQ(prepared.status().code(), absl::StatusCode::kFailedPrecondition) << prepared.status();
  EXPECT_NE(std::string(prepared.status().message()).find("no usable rows"), std::string::npos) << prepared.status();
}

TEST(data, PrepareTokenizerTrainsOnTheDataAndKeepsAnExistingOne) {
  const std::string dir = FreshDir("tokenizer");
  const config::JobSpec spec = Spec("{source: synthetic, synthetic_n: 20, seed: 3}");
  auto prepared = PrepareData(spec, dir);
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  ASSERT_TRUE(PrepareTokenizer(spec, *prepared, dir + "/model").ok());
  const std::string trained = ReadAll(dir + "/model/tokenizer.json");
  EXPECT_NE(trained.find("\"model\""), std::string::npos) << trained.substr(0, 200);
  std::ofstream(dir + "/model/tokenizer.json", std::ios::trunc) << "kept";
  ASSERT_TRUE(PrepareTokenizer(spec, *prepared, dir + "/model").ok());
  EXPECT_EQ(ReadAll(dir + "/model/tokenizer.json"), "kept");  // a resumed job keeps its tokenizer
  // Copied rather than trained: a missing source is an error that says it is the tokenizer.
  const config::JobSpec copied =
      Spec("{source: synthetic, synthetic_n: 20}", absl::StrCat("{path: ", dir, "/absent.json}"));
  const absl::Status missing = PrepareTokenizer(copied, *prepared, dir + "/model2");
  EXPECT_EQ(missing.code(), absl::StatusCode::kFailedPrecondition) << missing;
  EXPECT_EQ(std::string(missing.message()).rfind("tokenizer: ", 0), 0u) << missing;
}

TEST(data, PrepareWritesTheSpecsPromptLayoutForTheModel) {
  const std::string dir = FreshDir("layout");
  const config::JobSpec spec =
      Spec("{source: synthetic, synthetic_n: 4, image_placement: before_text, prompt_style: compact}");
  ASSERT_TRUE(WritePromptLayout(spec, dir + "/model").ok());
  auto layout = reward::ReadPromptLayout(dir + "/model");
  ASSERT_TRUE(layout.ok()) << layout.status();
  EXPECT_EQ(layout->placement, reward::ImagePlacement::kBeforeText);
  EXPECT_EQ(layout->style, reward::PromptStyle::kCompact);
  config::JobSpec unchecked = spec;  // a spec built in code skips ParseJobSpec's checks
  unchecked.data.prompt_style = "long";
  const absl::Status bad = WritePromptLayout(unchecked, dir + "/model2");
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument) << bad;
  EXPECT_EQ(std::string(bad.message()).rfind("data.prompt_style: ", 0), 0u) << bad;
}

}  // namespace
}  // namespace r1r::data
