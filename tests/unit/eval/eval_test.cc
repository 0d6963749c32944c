// Benchmark readers and metrics on the project's fixtures (expected values worked out by hand), and a
// cross-check of the known counts on the real benchmark rows when the workspace has them.
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/eval/judgement.h"
#include "common/eval/mm_rlhf_bench.h"
#include "common/eval/multimodal_rewardbench.h"
#include "common/eval/vl_rewardbench.h"

namespace r1r::eval {
namespace {

const std::string kFixtures = std::string(R1R_SOURCE_DIR) + "/tests/fixtures/benchmarks/";
const std::string kSharedBenchmarks = "/work/shared/data/benchmarks/";

constexpr Outcome C = Outcome::kCorrect, W = Outcome::kWrong, U = Outcome::kUnparsed;

std::vector<VlrbItem> LoadVlrb(const std::string& file) {
  data::ReadReport report;
  auto items = ReadVlRewardBench(file, report);
  EXPECT_TRUE(items.ok()) << items.status();
  EXPECT_EQ(report.bad_count, 0) << report.Summary();
  return items.ok() ? *items : std::vector<VlrbItem>{};
}

TEST(eval, ParseChoiceAndOutcome) {
  EXPECT_EQ(ParseChoice("<think>x</think><answer>2</answer>"), 2);
  EXPECT_EQ(ParseChoice("<answer> 1 </answer>"), 1);
  EXPECT_EQ(ParseChoice("<answer>3</answer> so 2 then 1 wins"), 1);  // fallback: the last 1/2 in the text
  EXPECT_EQ(ParseChoice("<answer>3</answer> so 1", false), std::nullopt);
  EXPECT_EQ(ParseChoice("no verdict"), std::nullopt);
  EXPECT_EQ(OutcomeFor(2, 2), C);
  EXPECT_EQ(OutcomeFor(1, 2), W);
  EXPECT_EQ(OutcomeFor(std::nullopt, 1), U);
}

TEST(eval, VotingAtK) {
  EXPECT_EQ(MajorityVote(std::vector<Outcome>{C, C, W}), C);
  EXPECT_EQ(MajorityVote(std::vector<Outcome>{W, W, C, U, W}), W);
  EXPECT_EQ(MajorityVote(std::vector<Outcome>{C, W, U}), U);     // no strict majority
  EXPECT_EQ(MajorityVote(std::vector<Outcome>{C, C, W, W}), U);  // tie
  EXPECT_EQ(MajorityVote(std::vector<Outcome>{C}), C);
  EXPECT_TRUE(AnyCorrect(std::vector<Outcome>{W, U, C}));
  EXPECT_FALSE(AnyCorrect(std::vector<Outcome>{W, U, W}));
}

TEST(eval, SeededOrderRandomisation) {
  int swapped = 0;
  for (uint64_t i = 0; i < 400; ++i) {
    const reward::OrderedPair p = OrderForJudging("good", "bad", true, 1234, i);
    EXPECT_EQ(p.label == 1 ? p.response1 : p.response2, "good");
    swapped += p.swapped ? 1 : 0;
    EXPECT_EQ(p.swapped, OrderForJudging("good", "bad", true, 1234, i).swapped);
    EXPECT_FALSE(OrderForJudging("good", "bad", false, 1234, i).swapped);
  }
  EXPECT_GT(swapped, 160);
  EXPECT_LT(swapped, 240);
  // A judge that always answers "1" scores 100% without randomisation and ~50% with it.
  int always_one_correct = 0;
  for (uint64_t i = 0; i < 400; ++i) {
    always_one_correct += OutcomeFor(1, OrderForJudging("good", "bad", true, 7, i).label) == C ? 1 : 0;
  }
  EXPECT_NEAR(always_one_correct / 400.0, 0.5, 0.1);
}

TEST(eval, VlRewardBenchReaderBothLayouts) {
  const std::vector<VlrbItem> official = LoadVlrb(kFixtures + "vl_rewardbench_sample.jsonl");
  const std::vector<VlrbItem> r1 = LoadVlrb(kFixtures + "vl_rewardbench_r1reward_layout_sample.jsonl");
  ASSERT_EQ(official.size(), 8u);
  ASSERT_EQ(r1.size(), 8u);
  EXPECT_EQ(official[6].preferred, 1);  // human_ranking [1, 0]
  EXPECT_EQ(official[6].chosen(), "The image does not show the ears.");
  for (size_t i = 0; i < 8; ++i) {
    EXPECT_EQ(official[i].chosen(), r1[i].chosen());
    EXPECT_EQ(official[i].rejected(), r1[i].rejected());
  }
  std::set<std::string> ids, keys;
  for (const VlrbItem& item : official) ids.insert(item.id), keys.insert(item.Key());
  EXPECT_EQ(ids.size(), 7u);  // mathverse_101 repeats with another query
  EXPECT_EQ(keys.size(), 8u);
}

TEST(eval, VlRewardBenchCategoryRules) {
  EXPECT_EQ(VlrbCategory("RLAIF-V-14", VlrbCategoryRule::kOfficial), "hallucination");
  EXPECT_EQ(VlrbCategory("RLAIF-V-14", VlrbCategoryRule::kR1RewardSubstring), "general");
  EXPECT_EQ(VlrbCategory("RLHF-V-3", VlrbCategoryRule::kR1RewardSubstring), "general");
  EXPECT_EQ(VlrbCategory("hallucination_pair-10", VlrbCategoryRule::kR1RewardSubstring), "hallucination");
  EXPECT_EQ(VlrbCategory("mmmu-pro_7", VlrbCategoryRule::kOfficial), "reasoning");
  EXPECT_EQ(VlrbCategory("wildvision-battle_5", VlrbCategoryRule::kOfficial), "general");
  EXPECT_EQ(VlrbCategory("LRVInstruction-000000007746", VlrbCategoryRule::kOfficial), "general");
}

TEST(eval, VlRewardBenchMacro) {
  const std::vector<VlrbItem> items = LoadVlrb(kFixtures + "vl_rewardbench_sample.jsonl");
  // Rows: RLAIF, RLHF, hallucination, mathverse, mmmu, wildvision, LRV (vlfeedback), mathverse.
  const std::vector<Outcome> outcomes = {C, C, W, C, U, C, W, C};

  // Official: hallucination {C, C, W} = 2/3, reasoning {C, C} = 2/2 (U dropped), general {C, W} = 1/2.
  const VlrbScores off = ScoreVlRewardBench(items, outcomes, VlrbCategoryRule::kOfficial,
                                            FailurePolicy::kExcludeFromDenominator);
  EXPECT_EQ(off.excluded, 1);
  EXPECT_EQ(off.overall.correct, 5);
  EXPECT_EQ(off.overall.total, 7);
  EXPECT_EQ(off.per_category.at("hallucination").total, 3);
  EXPECT_EQ(off.per_category.at("reasoning").total, 2);
  EXPECT_NEAR(off.macro, (2.0 / 3 + 1.0 + 0.5) / 3, 1e-12);

  // R1-Reward: RLAIF/RLHF move to general {C, C, C, W} = 3/4, hallucination {W} = 0/1,
  // reasoning {C, U->wrong, C} = 2/3.
  const VlrbScores r1 = ScoreVlRewardBench(items, outcomes, VlrbCategoryRule::kR1RewardSubstring,
                                           FailurePolicy::kCountAsWrong);
  EXPECT_EQ(r1.excluded, 0);
  EXPECT_DOUBLE_EQ(r1.overall.Accuracy(), 5.0 / 8);  // 3 + 0 + 2 correct of 8
  EXPECT_EQ(r1.per_category.at("general").correct, 3);
  EXPECT_EQ(r1.per_category.at("general").total, 4);
  EXPECT_NEAR(r1.macro, (0.0 + 0.75 + 2.0 / 3) / 3, 1e-12);
}

TEST(eval, MmRlhfRewardBenchAccAndAccPlus) {
  data::ReadReport report;
  auto items = ReadMmRlhfRewardBench(kFixtures + "mm_rlhf_rewardbench_sample.jsonl", report);
  ASSERT_TRUE(items.ok()) << items.status();
  ASSERT_EQ(items->size(), 12u);
  EXPECT_EQ((*items)[6].category, "long");  // long/short_story.png: "long" comes first in the keyword order
  EXPECT_TRUE((*items)[11].is_video);
  EXPECT_EQ((*items)[11].category, "video");

  // Rows: s1 s1 s2 | m1 m1 m2 | l1 l1 | f1 f1 | v1 v1, judged from scalar rewards (ties are wrong).
  const std::vector<std::pair<double, double>> rewards = {{2, 1}, {1, 1}, {3, 0}, {1, 0}, {5, 4}, {0, 1},
                                                          {2, 1}, {2, 1}, {0, 2}, {1, 3}, {1, 0}, {9, 8}};
  std::vector<bool> correct;
  for (auto [c, r] : rewards) correct.push_back(ChosenWins(c, r));
  const MmRlhfScores s = ScoreMmRlhfRewardBench(*items, correct);
  EXPECT_EQ(s.overall.pairs.correct, 8);
  EXPECT_EQ(s.overall.pairs.total, 12);
  EXPECT_EQ(s.overall.ids.correct, 4);  // s2, m1, l1, v1
  EXPECT_EQ(s.overall.ids.total, 7);
  EXPECT_DOUBLE_EQ(s.per_category.at("short").pairs.Accuracy(), 2.0 / 3);
  EXPECT_DOUBLE_EQ(s.per_category.at("short").ids.Accuracy(), 0.5);
  EXPECT_DOUBLE_EQ(s.per_category.at("mcq").ids.Accuracy(), 0.5);
  EXPECT_DOUBLE_EQ(s.per_category.at("safety").pairs.Accuracy(), 0.0);
  EXPECT_DOUBLE_EQ(s.per_category.at("video").ids.Accuracy(), 1.0);
  EXPECT_EQ(MmRlhfCategory("no/keyword.png"), "other");
}

TEST(eval, MultimodalRewardBenchBucketsAndTieRule) {
  data::ReadReport report;
  auto items = ReadMultimodalRewardBench(kFixtures + "multimodal_rewardbench_sample.json", report);
  ASSERT_TRUE(items.ok()) << items.status();
  ASSERT_EQ(items->size(), 6u);
  EXPECT_EQ((*items)[0].better, 2);
  EXPECT_EQ(MmrbBucket((*items)[1].id, (*items)[1].category), "safety/bias");
  EXPECT_EQ(MmrbBucket((*items)[2].id, (*items)[2].category), "safety/toxicity");
  EXPECT_EQ(MmrbBucket((*items)[3].id, (*items)[3].category), "reasoning/math");
  EXPECT_EQ(MmrbBucket((*items)[4].id, (*items)[4].category), "reasoning/coding");

  const std::vector<Outcome> outcomes = {C, W, U, C, U, W};
  const MmrbScores wrong = ScoreMultimodalRewardBench(*items, outcomes, TieRule::kWrong, 0);
  const MmrbScores right = ScoreMultimodalRewardBench(*items, outcomes, TieRule::kRight, 0);
  EXPECT_EQ(wrong.all.correct, 2);
  EXPECT_EQ(wrong.all.total, 6);
  EXPECT_EQ(right.all.correct, 4);
  EXPECT_EQ(wrong.per_bucket.at("safety/toxicity").correct, 0);
  EXPECT_EQ(right.per_bucket.at("reasoning/coding").correct, 1);
  EXPECT_EQ(wrong.per_bucket.at("knowledge").total, 1);
  // The coin gives each tie half a point on average, and is reproducible per seed.
  int64_t total = 0;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    const MmrbScores coin = ScoreMultimodalRewardBench(*items, outcomes, TieRule::kCoinFlip, seed);
    EXPECT_EQ(coin.all.correct,
              ScoreMultimodalRewardBench(*items, outcomes, TieRule::kCoinFlip, seed).all.correct);
    EXPECT_GE(coin.all.correct, 2);
    EXPECT_LE(coin.all.correct, 4);
    total += coin.all.correct;
  }
  EXPECT_NEAR(total / 200.0, 3.0, 0.25);
}

TEST(eval, MultimodalRewardBenchOfficialAnswerFile) {
  data::ReadReport report;
  auto lines = ReadMmrbAnswerFile(kFixtures + "mmrb_answers_sample.jsonl", report);
  ASSERT_TRUE(lines.ok()) << lines.status();
  ASSERT_EQ(lines->size(), 4u);
  EXPECT_EQ(OfficialVerdictOutcome((*lines)[0]), C);  // [[B]], label B
  EXPECT_EQ(OfficialVerdictOutcome((*lines)[1]), W);  // [[B]], label A
  EXPECT_EQ(OfficialVerdictOutcome((*lines)[2]), U);  // no verdict: coin flip when scored
  EXPECT_EQ(OfficialVerdictOutcome((*lines)[3]), W);  // both tags: A wins, label B
  EXPECT_EQ((*lines)[3].category, "reasoning");
}

TEST(eval, RealBenchmarkRowsHaveTheKnownCounts) {
  if (!std::filesystem::exists(kSharedBenchmarks + "vl_rewardbench.jsonl")) {
    GTEST_SKIP() << "no benchmark rows at " << kSharedBenchmarks;
  }
  const std::vector<VlrbItem> vl = LoadVlrb(kSharedBenchmarks + "vl_rewardbench.jsonl");
  ASSERT_EQ(vl.size(), 1250u);
  std::set<std::string> ids, keys;
  int preferred_first = 0;
  std::map<std::string, int> official, r1;
  for (const VlrbItem& item : vl) {
    ids.insert(item.id);
    keys.insert(item.Key());
    preferred_first += item.preferred == 0 ? 1 : 0;
    ++official[VlrbCategory(item.id, VlrbCategoryRule::kOfficial)];
    ++r1[VlrbCategory(item.id, VlrbCategoryRule::kR1RewardSubstring)];
  }
  EXPECT_EQ(ids.size(), 1232u);  // 18 repeated ids
  EXPECT_EQ(keys.size(), 1250u);
  EXPECT_EQ(preferred_first, 1245);
  EXPECT_EQ(official["general"], 183);
  EXPECT_EQ(official["hallucination"], 749);
  EXPECT_EQ(official["reasoning"], 318);
  EXPECT_EQ(r1["general"], 484);
  EXPECT_EQ(r1["hallucination"], 448);
  EXPECT_EQ(r1["reasoning"], 318);
  EXPECT_EQ(LoadVlrb(kSharedBenchmarks + "vl_rewardbench_r1reward_layout.jsonl").size(), 1250u);

  data::ReadReport report;
  auto mm = ReadMmRlhfRewardBench(kSharedBenchmarks + "mm_rlhf_rewardbench.jsonl", report);
  ASSERT_TRUE(mm.ok());
  EXPECT_EQ(report.bad_count, 0) << report.Summary();
  const MmRlhfScores all_right = ScoreMmRlhfRewardBench(*mm, std::vector<bool>(mm->size(), true));
  EXPECT_EQ(all_right.overall.pairs.total, 170);
  EXPECT_EQ(all_right.overall.ids.total, 46);
  EXPECT_DOUBLE_EQ(all_right.overall.ids.Accuracy(), 1.0);
  const std::map<std::string, std::pair<int, int>> expected = {
      {"mcq", {42, 10}}, {"long", {37, 10}}, {"short", {34, 10}}, {"safety", {32, 6}}, {"video", {25, 10}}};
  for (const auto& [category, counts] : expected) {
    EXPECT_EQ(all_right.per_category.at(category).pairs.total, counts.first) << category;
    EXPECT_EQ(all_right.per_category.at(category).ids.total, counts.second) << category;
  }

  data::ReadReport answers_report;
  auto answers = ReadMmrbAnswerFile(kSharedBenchmarks + "multimodal_rewardbench_example.jsonl", answers_report);
  ASSERT_TRUE(answers.ok());
  ASSERT_EQ(answers->size(), 2u);
  Tally all;
  for (const MmrbAnswerLine& line : *answers) all.Add(OfficialVerdictOutcome(line) == C);
  EXPECT_DOUBLE_EQ(all.Accuracy(), 0.5);  // the official example scores all = 0.5
}

}  // namespace
}  // namespace r1r::eval
