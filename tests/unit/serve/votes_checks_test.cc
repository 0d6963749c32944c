// Voting, best-of-N aggregation and the request limits of the RewardModel service.
#include <unistd.h>

#include <filesystem>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/data/png_io.h"
#include "common/files/remove_tree.h"
#include "services/serve/request_checks.h"
#include "services/serve/votes.h"

namespace r1r::serve {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(serve, TallyParsesTagsThenTheLastDigitAndTakesTheMajority) {
  const eval::ChoiceVotes t = TallyVotes({"<think>x</think><answer>2</answer>", "<answer>1</answer> then 2",
                                          "no verdict at all", "Response 2 is worse, so 1", "<answer>1</answer>"});
  EXPECT_EQ(t.votes_for_1, 3);  // the tag wins over later digits; the fallback takes the last 1/2
  EXPECT_EQ(t.votes_for_2, 1);
  EXPECT_EQ(t.unparsed, 1);
  EXPECT_EQ(t.choice, 1);  // 3 of 5
  EXPECT_EQ(t.votes_for_1 + t.votes_for_2 + t.unparsed, 5);
}

TEST(serve, TallyLeavesTiesAndMinoritiesUnresolved) {
  // serve votes with eval's rule: a tie is no verdict, whichever sample came first.
  EXPECT_EQ(TallyVotes({"<answer>2</answer>", "<answer>1</answer>"}).choice, 0);
  EXPECT_EQ(TallyVotes({"<answer>1</answer>", "<answer>2</answer>"}).choice, 0);
  // 2 of 5 is the most votes but not a majority of the five samples.
  EXPECT_EQ(TallyVotes({"nothing", "<answer>2</answer>", "<answer>1</answer>", "<answer>2</answer>", "none"}).choice,
            0);
  EXPECT_EQ(TallyVotes({"<answer>2</answer>", "<answer>2</answer>", "<answer>1</answer>"}).choice, 2);
  const eval::ChoiceVotes none = TallyVotes({"nothing", "still nothing"});
  EXPECT_EQ(none.choice, 0);
  EXPECT_EQ(none.unparsed, 2);
  EXPECT_EQ(TallyVotes({"<answer>3</answer>", "<answer>1</answer>"}).unparsed, 1);  // only 1 and 2 are answers
}

TEST(serve, OrderedPairsShowEveryPairInBothPositions) {
  EXPECT_THAT(AllOrderedPairs(3), ElementsAre(std::pair(0, 1), std::pair(1, 0), std::pair(0, 2), std::pair(2, 0),
                                              std::pair(1, 2), std::pair(2, 1)));
  EXPECT_TRUE(AllOrderedPairs(1).empty());
}

TEST(serve, RankCountsWinsAndOrdersBestFirst) {
  // Response 2 beats both others in both positions; 0 beats 1 once, 1 beats 0 once; one verdict missing.
  const std::vector<PairVerdict> v = {{0, 1, 1}, {1, 0, 1}, {0, 2, 2}, {2, 0, 1}, {1, 2, 2}, {2, 1, 0}};
  const Ranking r = RankFromVerdicts(3, v);
  EXPECT_THAT(r.wins, ElementsAre(1, 1, 3));
  EXPECT_THAT(r.order, ElementsAre(2, 0, 1));  // ties keep the lower index first
  EXPECT_EQ(r.best, 2);
}

v1::CompareRequest GoodCompare() {
  v1::CompareRequest r;
  r.set_question("How many red circles?");
  r.set_response1("Two.");
  r.set_response2("Three.");
  return r;
}

void ExpectInvalid(const absl::Status& s, const std::string& field) {
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), ::testing::StartsWith(field + ":")) << s;
}

TEST(serve, CompareChecksNameTheField) {
  const RequestLimits limits;
  EXPECT_TRUE(CheckCompareRequest(GoodCompare(), limits).ok());
  auto r = GoodCompare();
  r.set_question(std::string((16 << 10) + 1, 'q'));
  ExpectInvalid(CheckCompareRequest(r, limits), "question");
  r = GoodCompare();
  r.set_question(std::string(16 << 10, 'q'));
  EXPECT_TRUE(CheckCompareRequest(r, limits).ok());  // exactly 16 KiB is allowed
  r = GoodCompare();
  r.set_response1("");
  ExpectInvalid(CheckCompareRequest(r, limits), "response1");
  r = GoodCompare();
  r.set_response2(std::string((32 << 10) + 1, 'a'));
  ExpectInvalid(CheckCompareRequest(r, limits), "response2");
  r = GoodCompare();
  r.set_votes(33);
  ExpectInvalid(CheckCompareRequest(r, limits), "votes");
  r.set_votes(32);
  EXPECT_TRUE(CheckCompareRequest(r, limits).ok());
  r.set_votes(-1);
  ExpectInvalid(CheckCompareRequest(r, limits), "votes");
  r = GoodCompare();
  r.set_temperature(2.5f);
  ExpectInvalid(CheckCompareRequest(r, limits), "temperature");
  r.set_temperature(std::nanf(""));
  ExpectInvalid(CheckCompareRequest(r, limits), "temperature");
  r = GoodCompare();
  r.set_max_new_tokens(4097);
  ExpectInvalid(CheckCompareRequest(r, limits), "max_new_tokens");
  r = GoodCompare();
  r.mutable_image()->set_png_or_jpeg(std::string((16 << 20) + 1, 'x'));
  ExpectInvalid(CheckCompareRequest(r, limits), "image.png_or_jpeg");
  r = GoodCompare();
  r.mutable_image()->set_path("/nonexistent/r1r/image.png");
  const absl::Status no_roots = CheckCompareRequest(r, limits);
  EXPECT_EQ(no_roots.code(), absl::StatusCode::kPermissionDenied) << no_roots;  // no --data-root: no paths
  EXPECT_THAT(std::string(no_roots.message()), HasSubstr("image.path"));
}

// image.path is confined to --data-root before anything is looked up: outside it, "../" or a link out
// is PERMISSION_DENIED whether or not the file exists; inside, a missing file is INVALID_ARGUMENT.
TEST(serve, RequestImagePathsStayUnderTheDataRoot) {
  const std::string dir = ::testing::TempDir() + "/serve_roots_" + std::to_string(getpid());
  std::filesystem::create_directories(dir + "/root");
  ASSERT_TRUE(data::WritePng(dir + "/root/in.png", data::RgbImage(8, 8, 1, 2, 3)).ok());
  ASSERT_TRUE(data::WritePng(dir + "/out.png", data::RgbImage(8, 8, 1, 2, 3)).ok());
  std::filesystem::create_symlink(dir + "/out.png", dir + "/root/link.png");
  RequestLimits limits;
  auto roots = files::Roots::Make({{"data-root", dir + "/root"}});
  ASSERT_TRUE(roots.ok()) << roots.status();
  limits.image_roots = *roots;
  auto request = [](const std::string& path) {
    v1::CompareRequest r = GoodCompare();
    r.mutable_image()->set_path(path);
    return r;
  };
  EXPECT_TRUE(CheckCompareRequest(request(dir + "/root/in.png"), limits).ok());
  v1::ImageInput in;
  in.set_path(dir + "/root/in.png");
  ASSERT_TRUE(DecodeRequestImage(in, limits).ok());
  for (const std::string& outside : {dir + "/out.png", dir + "/root/../out.png", dir + "/root/link.png",
                                     std::string("/etc/passwd"), dir + "/missing-outside.png"}) {
    SCOPED_TRACE(outside);
    const absl::Status s = CheckCompareRequest(request(outside), limits);
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("image.path"));
    v1::ImageInput image;
    image.set_path(outside);
    EXPECT_EQ(DecodeRequestImage(image, limits).status().code(), absl::StatusCode::kPermissionDenied);
  }
  ExpectInvalid(CheckCompareRequest(request(dir + "/root/missing.png"), limits), "image.path");
  r1r::files::RemoveTree(dir).IgnoreError();
}

TEST(serve, RankChecksBoundTheResponsesAndTheWork) {
  const RequestLimits limits;
  v1::RankRequest r;
  r.set_question("q");
  r.add_responses("only one");
  ExpectInvalid(CheckRankRequest(r, limits), "responses");
  r.add_responses("two");
  EXPECT_TRUE(CheckRankRequest(r, limits).ok());
  r.add_responses("");
  ExpectInvalid(CheckRankRequest(r, limits), "responses[2]");
  r.clear_responses();
  for (int i = 0; i < 17; ++i) r.add_responses("r");
  ExpectInvalid(CheckRankRequest(r, limits), "responses");
  r.clear_responses();
  for (int i = 0; i < 16; ++i) r.add_responses("r");
  r.set_votes(32);  // 32 x 16 x 15 = 7680 sequences
  ExpectInvalid(CheckRankRequest(r, limits), "votes");
  r.set_votes(1);
  EXPECT_TRUE(CheckRankRequest(r, limits).ok());
}

TEST(serve, VotePlanIsGreedyForOneVoteAndDefaultsTheTemperature) {
  EXPECT_EQ(VotePlan(0, 1.5), std::make_pair(1, 0.0));
  EXPECT_EQ(VotePlan(1, 1.5), std::make_pair(1, 0.0));
  EXPECT_EQ(VotePlan(5, 0.7), std::make_pair(5, 0.7));
  EXPECT_EQ(VotePlan(5, 0.0), std::make_pair(5, 1.0));  // proto3 unset = the documented default 1.0
}

TEST(serve, RequestImagesDecodeOrFailWithTheField) {
  const std::string dir = ::testing::TempDir() + "/serve_images_" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  RequestLimits limits;
  limits.image_roots = *files::Roots::Make({{"data-root", dir}});
  ASSERT_TRUE(data::WritePng(dir + "/ok.png", data::RgbImage(30, 20, 200, 10, 10)).ok());
  ASSERT_TRUE(data::WritePng(dir + "/wide.png", data::RgbImage(4097, 1, 0, 0, 0)).ok());

  v1::ImageInput path;
  path.set_path(dir + "/ok.png");
  auto image = DecodeRequestImage(path, limits);
  ASSERT_TRUE(image.ok()) << image.status();
  ASSERT_TRUE(image->has_value());
  EXPECT_EQ((*image)->width, 30);
  EXPECT_EQ((*image)->height, 20);
  EXPECT_EQ((*image)->at(0, 0, 0), 200);

  v1::ImageInput corrupt;
  corrupt.set_png_or_jpeg("\x89PNG\r\n\x1a\nthis is not a png");
  ExpectInvalid(DecodeRequestImage(corrupt, limits).status(), "image.png_or_jpeg");
  corrupt.set_png_or_jpeg("GIF89a....");
  ExpectInvalid(DecodeRequestImage(corrupt, limits).status(), "image.png_or_jpeg");

  v1::ImageInput wide;
  wide.set_path(dir + "/wide.png");
  const absl::Status s = DecodeRequestImage(wide, limits).status();
  ExpectInvalid(s, "image.path");
  EXPECT_THAT(std::string(s.message()), HasSubstr("4097x1"));

  EXPECT_FALSE(DecodeRequestImage(v1::ImageInput(), limits)->has_value());  // no image: text only
  r1r::files::RemoveTree(dir).IgnoreError();
}

}  // namespace
}  // namespace r1r::serve
