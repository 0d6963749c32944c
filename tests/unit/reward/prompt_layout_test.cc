// r1r_prompt.json (common/reward/prompt_layout.h): what the writer writes the reader reads back, a
// directory without the file gets the defaults, and a malformed file is an error naming file and field.
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "common/files/remove_tree.h"
#include "common/reward/prompt_layout.h"

namespace r1r::reward {
namespace {

namespace fs = std::filesystem;

std::string FreshDir(const std::string& name) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("r1r_prompt_layout_" + name);
  EXPECT_TRUE(files::RemoveTree(dir).ok()) << dir;
  return dir.string();  // not created: the writer creates it
}

TEST(reward, PromptLayoutRoundTripsEveryPlacementAndStyle) {
  for (ImagePlacement placement : {ImagePlacement::kAfterText, ImagePlacement::kBeforeText}) {
    for (PromptStyle style : {PromptStyle::kCompact, PromptStyle::kR1Reward}) {
      const std::string dir = FreshDir("round_trip");
      const PromptLayout written{placement, style};
      ASSERT_TRUE(WritePromptLayout(written, dir).ok());
      auto read = ReadPromptLayout(dir);
      ASSERT_TRUE(read.ok()) << read.status();
      EXPECT_EQ(*read, written) << ImagePlacementName(placement) << " " << PromptStyleName(style);
    }
  }
  // The file's spelling, which other tools (and older model directories) rely on.
  const std::string dir = FreshDir("spelling");
  ASSERT_TRUE(WritePromptLayout({ImagePlacement::kAfterText, PromptStyle::kCompact}, dir).ok());
  std::ifstream in(dir + "/r1r_prompt.json");
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, R"({"image_placement":"after_text","prompt_style":"compact"})");
}

TEST(reward, PromptLayoutAbsentIsImageFirstAndThePapersPrompt) {
  const std::string dir = FreshDir("absent");
  fs::create_directories(dir);
  auto read = ReadPromptLayout(dir);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->placement, ImagePlacement::kBeforeText);
  EXPECT_EQ(read->style, PromptStyle::kR1Reward);
}

TEST(reward, MalformedPromptLayoutNamesTheFileAndTheField) {
  const std::string dir = FreshDir("malformed");
  fs::create_directories(dir);
  const std::string path = dir + "/r1r_prompt.json";
  struct Case {
    const char* text;
    const char* names;  // the field (or the whole-file problem) the message must name
  };
  for (const Case& c : {Case{R"({"image_placement": 3})", "image_placement must be a string"},
                        Case{R"({"prompt_style": "compact"})", "image_placement is required"},
                        Case{R"({"image_placement": "sideways"})",
                             "image_placement must be after_text or before_text, got 'sideways'"},
                        Case{R"({"image_placement": "after_text", "prompt_style": 7})", "prompt_style must be a string"},
                        Case{R"({"image_placement": "after_text", "prompt_style": "short"})",
                             "prompt_style must be r1reward or compact, got 'short'"},
                        Case{"[1, 2]", "not a JSON object"}, Case{"{not json", "not a JSON object"}}) {
    std::ofstream(path, std::ios::trunc) << c.text;
    auto read = ReadPromptLayout(dir);
    ASSERT_FALSE(read.ok()) << c.text;
    EXPECT_EQ(read.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_EQ(std::string(read.status().message()), path + ": " + c.names) << c.text;
  }
}

TEST(reward, PromptLayoutWriteFailureNamesTheFile) {
  const std::string dir = FreshDir("unwritable");
  fs::create_directories(dir + "/r1r_prompt.json");  // a directory where the file should go
  const absl::Status s = WritePromptLayout({}, dir);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
  EXPECT_NE(std::string(s.message()).find(dir + "/r1r_prompt.json"), std::string::npos) << s;
}

}  // namespace
}  // namespace r1r::reward
