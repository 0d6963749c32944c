// EncodeWirePrompt: the one path from a wire prompt to model input. The image is confined to the
// read roots, checked against its sha256 and loaded; ids are range-checked; errors name the field.
#include "common/train/wire_prompt.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/train/sha256.h"
#include "tests/unit/train/tiny_world.h"

namespace r1r::train {
namespace {

using ::testing::HasSubstr;
using testing::World;

struct Fixture {
  std::unique_ptr<Policy> policy = testing::LoadPolicy();
  files::Roots roots = *files::Roots::Make({{"data-root", World().data_dir}});
  int64_t vocab = policy->model().config().text.vocab_size;
  const data::PreferenceSample& sample = World().items.at(0).sample;

  WirePrompt Prompt() const {
    WirePrompt w;
    w.question = sample.question;
    w.response1 = sample.response1;
    w.response2 = sample.response2;
    w.dataset = World().data_dir;
    w.image_path = sample.image_path;  // relative to the dataset
    return w;
  }
};

std::string Message(const absl::Status& s) { return std::string(s.message()); }

TEST(train, WirePromptRendersTheTextsWithTheImageLikeTheEncoder) {
  Fixture f;
  auto wire = EncodeWirePrompt(f.policy->encoder(), f.Prompt(), f.roots, f.vocab);
  ASSERT_TRUE(wire.ok()) << wire.status();
  auto direct = f.policy->encoder().Encode(
      {f.sample.question, f.sample.response1, f.sample.response2, World().data_dir + "/" + f.sample.image_path});
  ASSERT_TRUE(direct.ok()) << direct.status();
  EXPECT_EQ(wire->ids, direct->ids);
  ASSERT_TRUE(wire->pixel_values.defined());
  EXPECT_TRUE(wire->pixel_values.equal(direct->pixel_values));
}

TEST(train, WirePromptWithIdsKeepsThemAndLoadsTheImage) {
  Fixture f;
  const std::vector<int32_t> ids = {1, 2, 3};
  WirePrompt w = f.Prompt();
  w.token_ids = ids;
  auto e = EncodeWirePrompt(f.policy->encoder(), w, f.roots, f.vocab);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->ids, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_TRUE(e->pixel_values.defined());
}

TEST(train, WirePromptIdOutOfRangeNamesTheField) {
  Fixture f;
  const std::vector<int32_t> ids = {1, static_cast<int32_t>(f.vocab)};
  WirePrompt w = f.Prompt();
  w.token_ids = ids;
  auto e = EncodeWirePrompt(f.policy->encoder(), w, f.roots, f.vocab);
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(e.status()), HasSubstr("prompt_token_ids: id " + std::to_string(f.vocab) + " out of range"));
  const std::vector<int32_t> negative = {-1};
  EXPECT_THAT(Message(TokenIdsInRange(negative, f.vocab, "response_token_ids").status()),
              HasSubstr("response_token_ids: id -1 out of range"));
}

TEST(train, WirePromptImageOutsideTheRootsIsRefused) {
  Fixture f;
  auto elsewhere = *files::Roots::Make({{"data-root", World().model_dir}});
  auto e = EncodeWirePrompt(f.policy->encoder(), f.Prompt(), elsewhere, f.vocab);
  EXPECT_EQ(e.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(Message(e.status()), HasSubstr("preference.sample.image_path"));
  WirePrompt escape = f.Prompt();
  escape.image_path = "../model/tokenizer.json";
  e = EncodeWirePrompt(f.policy->encoder(), escape, f.roots, f.vocab);
  EXPECT_EQ(e.status().code(), absl::StatusCode::kPermissionDenied);
}

TEST(train, WirePromptShaMismatchIsDataLossAndAMatchPasses) {
  Fixture f;
  WirePrompt w = f.Prompt();
  const std::string wrong(64, 'a');
  w.image_sha256 = wrong;
  auto e = EncodeWirePrompt(f.policy->encoder(), w, f.roots, f.vocab);
  EXPECT_EQ(e.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Message(e.status()), HasSubstr("preference.sample: "));
  auto right = Sha256HexOfFile(World().data_dir + "/" + f.sample.image_path);
  ASSERT_TRUE(right.ok()) << right.status();
  w.image_sha256 = *right;
  EXPECT_TRUE(EncodeWirePrompt(f.policy->encoder(), w, f.roots, f.vocab).ok());
}

TEST(train, WirePromptMissingImageIsNotFoundNamingTheField) {
  Fixture f;
  WirePrompt w = f.Prompt();
  w.image_path = "images/none.png";
  auto e = EncodeWirePrompt(f.policy->encoder(), w, f.roots, f.vocab);
  EXPECT_EQ(e.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(e.status()), HasSubstr("preference.sample.image_path"));
}

TEST(train, WirePromptTextOnlyNeedsNoRoots) {
  Fixture f;
  WirePrompt w = f.Prompt();
  w.image_path = "";
  auto e = EncodeWirePrompt(f.policy->encoder(), w, files::Roots(), f.vocab);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_FALSE(e->pixel_values.defined());
  EXPECT_FALSE(e->ids.empty());
}

}  // namespace
}  // namespace r1r::train
