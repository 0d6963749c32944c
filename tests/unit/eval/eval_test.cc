// Benchmark readers and metrics on the project's fixtures (expected values worked out by hand), and a
// cross-check of the known counts on the real benchmark rows when the workspace has them.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/eval/judgement.h"
#include "common/eval/mm_rlhf_bench.h"
#include "common/eval/multimodal_rewardbench.h"
#include "common/eval/python_random.h"
#include "common/eval/vl_rewardbench.h"

namespace r1r::eval {
namespace {

const std::string kFixtures = std::string(R1R_SOURCE_DIR) + "/tests/fixtures/benchmarks/";
const std::string kSharedBenchmarks = "/work/shared/data/benchmarks/";

// A percentage with two decimals, as the paper prints it.
std::string Pct(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", x);
  return buf;
}

// The benchmark item an official answer line judges (Label A/B = Output1/Output2 better).
MmrbItem ItemFor(const MmrbAnswerLine& line) {
  MmrbItem item;
  item.id = line.id;
  item.better = line.label;
  item.category = line.category;
  return item;
}

constexpr Outcome C = Outcome::kCorrect, W = Outcome::kWrong, U = Outcome::kUnparsed;

std::vector<VlrbItem> LoadVlrb(const std::string& file) {
  jsonl::ReadReport report;
  auto items = ReadVlRewardBench(file, report);
  EXPECT_TRUE(items.ok()) << items.status();
  EXPECT_EQ(report.bad_count, 0) << report.Summary();
  return items.ok() ? *items : std::vector<VlrbItem>{};
}

TEST(eval, ParseChoiceAndOutcome) {
  EXPECT_EQ(ParseChoice("<think>x</think><answer>2</answer>"), 2);
  EXPECT_EQ(ParseChoice("<answer> 1 </answer>"), 1);
  EXPECT_EQ(ParseChoice("no verdict"), std::nullopt);
  // Without a tag (or with an unclosed one) the fallback takes the last 1/2 in the text.
  EXPECT_EQ(ParseChoice("Response 2 beats Response 1"), 1);
  EXPECT_EQ(ParseChoice("<answer>2 so 1"), 1);
  EXPECT_EQ(ParseChoice("Response 2 beats Response 1", false), std::nullopt);
  EXPECT_EQ(OutcomeFor(2, 2), C);
  EXPECT_EQ(OutcomeFor(1, 2), W);
  EXPECT_EQ(OutcomeFor(std::nullopt, 1), U);
}

// R1-Reward's scorers: float(re.search(r"<answer>(.*?)</answer>").group(1).strip()) == 1, and the text
// fallback only when there is no tag at all.
TEST(eval, ParseChoiceReadsTheTagAsANumber) {
  EXPECT_EQ(ParseChoice("<answer>1.0</answer>"), 1);
  EXPECT_EQ(ParseChoice("<answer>2.00</answer>"), 2);
  EXPECT_EQ(ParseChoice("<answer>\n1e0\n</answer>"), 1);
  EXPECT_EQ(ParseChoice("<answer>\xef\xbc\x91</answer>"), 1);                  // full-width 1
  EXPECT_EQ(ParseChoice("<answer>\xe3\x80\x80\xef\xbc\x92 </answer>"), 2);  // ideographic space, full-width 2
  EXPECT_EQ(ParseChoice("<answer>+1</answer>"), 1);
  // A tag that is not a number is unparsed: no fallback to the digits around it.
  EXPECT_EQ(ParseChoice("Response 1 <answer>Response 2</answer>"), std::nullopt);
  EXPECT_EQ(ParseChoice("<answer>1/2</answer> so 2"), std::nullopt);
  EXPECT_EQ(ParseChoice("<answer></answer> 2"), std::nullopt);
  // A number naming neither response is a (wrong) choice, not a fallback.
  EXPECT_EQ(ParseChoice("<answer>3</answer> so 2 then 1 wins"), 0);
  EXPECT_EQ(ParseChoice("<answer>nan</answer> 1"), 0);
  EXPECT_EQ(OutcomeFor(ParseChoice("<answer>3</answer>"), 1), W);
  // Only the first closed tag counts.
  EXPECT_EQ(ParseChoice("<answer>2</answer><answer>1</answer>"), 2);
}

TEST(eval, ParsePythonFloatMatchesCPython) {
  // Expected values from CPython 3.11's float().
  const std::vector<std::pair<std::string, std::optional<double>>> cases = {
      {"1", 1.0},         {" 1.0 ", 1.0},      {"1.", 1.0},       {".5", 0.5},    {"1e0", 1.0},
      {"1.e0", 1.0},      {"+1", 1.0},         {"-1", -1.0},      {"1_0", 10.0},  {"0.99999999999999999999", 1.0},
      {"\u0662", 2.0},    {"\xc2\xa0" "1\xe3\x80\x80", 1.0}, {"1__0", {}},  {"_1", {}}, {"1_", {}},
      {".", {}},          {"e1", {}},          {"1e", {}},        {"1e+", {}},    {"0x1", {}},
      {"1 2", {}},        {"", {}},            {"inf1", {}},      {"Response 2", {}},
      {"\xef\xbc\x91\xef\xbc\x8e\xef\xbc\x90", {}},  // full-width "1.0": the full stop is not '.'
      {"\xff", {}},  // not UTF-8
  };
  for (const auto& [text, expected] : cases) {
    const std::optional<double> got = ParsePythonFloat(text);
    ASSERT_EQ(got.has_value(), expected.has_value()) << "'" << text << "'";
    if (expected) {
      EXPECT_EQ(*got, *expected) << "'" << text << "'";
    }
  }
  EXPECT_TRUE(std::isinf(*ParsePythonFloat("-Infinity")));
  EXPECT_TRUE(std::isnan(*ParsePythonFloat("NaN")));
  EXPECT_EQ(*ParsePythonFloat("1e999"), HUGE_VAL);
}

TEST(eval, PythonRandomReproducesCPython) {
  // python3 -c "import random; random.seed(123); print([random.random() for _ in range(3)])"
  PythonRandom r(123);
  EXPECT_EQ(r.Random(), 0.052363598850944326);
  EXPECT_EQ(r.Random(), 0.08718667752263232);
  EXPECT_EQ(r.Random(), 0.4072417636703983);
  for (int i = 0; i < 2000; ++i) r.Random();  // past several regenerations of the 624-word state
  EXPECT_EQ(r.Random(), 0.22526395391656295);
  PythonRandom zero(0);
  EXPECT_EQ(zero.Random(), 0.8444218515250481);
  PythonRandom wide((uint64_t{1} << 40) | 7);  // two 32-bit key words
  EXPECT_EQ(wide.Random(), 0.6137037779936511);
}

TEST(eval, VotingAtK) {
  EXPECT_EQ(MajorityVote(std::vector<Outcome>{C, C, W}), C);
  EXPECT_EQ(MajorityVote(std::vector<Outcome>{W, W, C, U, W}), W);
  EXPECT_EQ(MajorityVote(std::vector<Outcome>{C, W, U}), U);     // no strict majority
  EXPECT_EQ(MajorityVote(std::vector<Outcome>{C, C, W, W}), U);  // tie
  EXPECT_EQ(MajorityVote(std::vector<Outcome>{C}), C);
  EXPECT_EQ(MajorityVote(std::vector<Outcome>{C, C, W, U, U}), U);  // 2 of 5 is the most, not a majority
  EXPECT_EQ(MajorityVote(std::vector<Outcome>{C, W, C, U, C}), C);  // 3 of 5
  EXPECT_TRUE(AnyCorrect(std::vector<Outcome>{W, U, C}));
  EXPECT_FALSE(AnyCorrect(std::vector<Outcome>{W, U, W}));
}

TEST(eval, MajorityChoiceIsAStrictMajorityOfAllSamples) {
  using Choices = std::vector<std::optional<int>>;
  const ChoiceVotes three_of_five = MajorityChoice(Choices{2, 1, 2, std::nullopt, 2});
  EXPECT_EQ(three_of_five.choice, 2);
  EXPECT_EQ(three_of_five.votes_for_1, 1);
  EXPECT_EQ(three_of_five.votes_for_2, 3);
  EXPECT_EQ(three_of_five.unparsed, 1);
  EXPECT_EQ(MajorityChoice(Choices{1, 2}).choice, 0);        // a tie stays unresolved, in either order
  EXPECT_EQ(MajorityChoice(Choices{2, 1}).choice, 0);
  EXPECT_EQ(MajorityChoice(Choices{1, 1, 2, 2}).choice, 0);
  EXPECT_EQ(MajorityChoice(Choices{1, 1, 2, std::nullopt, std::nullopt}).choice, 0);  // 2 of 5
  EXPECT_EQ(MajorityChoice(Choices{1}).choice, 1);
  EXPECT_EQ(MajorityChoice(Choices{std::nullopt}).choice, 0);
  const ChoiceVotes neither = MajorityChoice(Choices{0, 3, 1});
  EXPECT_EQ(neither.unparsed, 2);  // numbers naming neither response are no vote
  EXPECT_EQ(neither.choice, 0);
  EXPECT_EQ(MajorityChoice(Choices{}).choice, 0);
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

  // Every reasoning item unparsed: official cal.py averages the two categories that judged something.
  const std::vector<Outcome> no_reasoning = {C, C, W, U, U, C, W, U};
  const VlrbScores two = ScoreVlRewardBench(items, no_reasoning, VlrbCategoryRule::kOfficial,
                                            FailurePolicy::kExcludeFromDenominator);
  EXPECT_EQ(two.per_category.at("reasoning").total, 0);
  EXPECT_NEAR(two.macro, (2.0 / 3 + 0.5) / 2, 1e-12);  // not (2/3 + 1/2 + 0) / 3
  EXPECT_EQ(ScoreVlRewardBench(items, std::vector<Outcome>(8, U), VlrbCategoryRule::kOfficial,
                               FailurePolicy::kExcludeFromDenominator)
                .macro,
            0.0);
}

TEST(eval, MmRlhfRewardBenchAccAndAccPlus) {
  jsonl::ReadReport report;
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
  jsonl::ReadReport report;
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
  // Both coins give each tie half a point on average, and are reproducible per seed.
  for (TieRule coin_rule : {TieRule::kCoinFlip, TieRule::kHashCoin}) {
  int64_t total = 0;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    const MmrbScores coin = ScoreMultimodalRewardBench(*items, outcomes, coin_rule, seed);
    EXPECT_EQ(coin.all.correct, ScoreMultimodalRewardBench(*items, outcomes, coin_rule, seed).all.correct);
    EXPECT_GE(coin.all.correct, 2);
    EXPECT_LE(coin.all.correct, 4);
    total += coin.all.correct;
  }
  EXPECT_NEAR(total / 200.0, 3.0, 0.25);
  }
  // The official scorer lower-cases the ID before the prefix test.
  EXPECT_EQ(MmrbBucket("PAIRS_17", "safety"), "safety/bias");
  EXPECT_EQ(MmrbBucket("Pairs-x", "safety"), "safety/bias");
  EXPECT_EQ(MmrbBucket("MathVista_3", "reasoning"), "reasoning/math");
  EXPECT_EQ(MmrbBucket("MATH", "reasoning"), "reasoning/math");
  EXPECT_EQ(MmrbBucket("mat", "reasoning"), "reasoning/coding");
  EXPECT_EQ(MmrbBucket("hateful_3", "safety"), "safety/toxicity");
}

// mmrb_answers_ties.jsonl (24 lines, 16 without a verdict, mixed-case IDs) scored as the official
// scripts/2_get_accuracy.py scores it; the expected numbers are that script's output (Python 3.11).
TEST(eval, MultimodalRewardBenchTiesDrawLikeTheOfficialScorer) {
  jsonl::ReadReport report;
  auto lines = ReadMmrbAnswerFile(kFixtures + "mmrb_answers_ties.jsonl", report);
  ASSERT_TRUE(lines.ok()) << lines.status();
  ASSERT_EQ(lines->size(), 24u);
  std::vector<MmrbItem> items;
  std::vector<Outcome> outcomes;
  for (const MmrbAnswerLine& line : *lines) {
    items.push_back(ItemFor(line));
    outcomes.push_back(OfficialVerdictOutcome(line));
  }
  const MmrbScores s = ScoreMultimodalRewardBench(items, outcomes, TieRule::kCoinFlip, kMmrbOfficialTieSeed);
  const std::map<std::string, std::pair<int64_t, int64_t>> official = {
      {"safety/bias", {4, 6}},     {"safety/toxicity", {2, 3}},
      {"reasoning/math", {2, 6}},  {"reasoning/coding", {0, 3}},
      {"open_generation/correctness_task", {2, 3}}, {"knowledge", {1, 3}}};
  EXPECT_EQ(s.all.correct, 11);
  EXPECT_EQ(s.all.total, 24);
  ASSERT_EQ(s.per_bucket.size(), official.size());
  for (const auto& [bucket, counts] : official) {
    EXPECT_EQ(s.per_bucket.at(bucket).correct, counts.first) << bucket;
    EXPECT_EQ(s.per_bucket.at(bucket).total, counts.second) << bucket;
  }
}

TEST(eval, MultimodalRewardBenchOfficialAnswerFile) {
  jsonl::ReadReport report;
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

  jsonl::ReadReport report;
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

  jsonl::ReadReport answers_report;
  auto answers = ReadMmrbAnswerFile(kSharedBenchmarks + "multimodal_rewardbench_example.jsonl", answers_report);
  ASSERT_TRUE(answers.ok());
  ASSERT_EQ(answers->size(), 2u);
  Tally all;
  for (const MmrbAnswerLine& line : *answers) all.Add(OfficialVerdictOutcome(line) == C);
  EXPECT_DOUBLE_EQ(all.Accuracy(), 0.5);  // the official example scores all = 0.5
  // Without verdicts both lines are ties: random.seed(123) draws 0.0524 and 0.0872, both "A", and both
  // labels are "B", so the official scorer gives 0/2 where the hash coin would give 1/2.
  std::vector<MmrbItem> tie_items;
  for (const MmrbAnswerLine& line : *answers) {
    tie_items.push_back(ItemFor(line));
  }
  const std::vector<Outcome> ties(tie_items.size(), U);
  EXPECT_EQ(ScoreMultimodalRewardBench(tie_items, ties, TieRule::kCoinFlip, kMmrbOfficialTieSeed).all.correct, 0);
}

// R1-Reward's Table 3 row on the real 1,250 rows: per-category counts under its substring rule, failures
// wrong. The overall 899/1250 = 71.92 and macro ~71.44 must come out of the scorer unchanged; under the
// official rule, a category with nothing judged drops out of the macro.
TEST(eval, RealVlRewardBenchReproducesThePaperNumbers) {
  if (!std::filesystem::exists(kSharedBenchmarks + "vl_rewardbench_r1reward_layout.jsonl")) {
    GTEST_SKIP() << "no benchmark rows at " << kSharedBenchmarks;
  }
  const std::vector<VlrbItem> vl = LoadVlrb(kSharedBenchmarks + "vl_rewardbench_r1reward_layout.jsonl");
  ASSERT_EQ(vl.size(), 1250u);
  // Right answers per category (general 309, hallucination 384, reasoning 206); the rest wrong or unparsed.
  std::map<std::string, int> right = {{"general", 309}, {"hallucination", 384}, {"reasoning", 206}};
  std::vector<Outcome> outcomes;
  int n = 0;
  for (const VlrbItem& item : vl) {
    int& left = right[VlrbCategory(item.id, VlrbCategoryRule::kR1RewardSubstring)];
    outcomes.push_back(left > 0 ? C : (++n % 2 ? W : U));
    left -= left > 0 ? 1 : 0;
  }
  const VlrbScores paper = ScoreVlRewardBench(vl, outcomes, VlrbCategoryRule::kR1RewardSubstring,
                                              FailurePolicy::kCountAsWrong);
  EXPECT_EQ(paper.overall.correct, 899);
  EXPECT_EQ(paper.overall.total, 1250);
  EXPECT_EQ(Pct(100 * paper.overall.Accuracy()), "71.92");
  // The paper's 71.44 is the mean of its rounded category percentages (63.84, 85.71, 64.78); exact 71.446.
  EXPECT_NEAR(100 * paper.macro, 71.44, 0.01);
  EXPECT_EQ(Pct(100 * paper.per_category.at("general").Accuracy()), "63.84");

  std::vector<Outcome> no_reasoning = outcomes;
  for (size_t i = 0; i < vl.size(); ++i) {
    if (VlrbCategory(vl[i].id, VlrbCategoryRule::kOfficial) == "reasoning") no_reasoning[i] = U;
  }
  const VlrbScores official = ScoreVlRewardBench(vl, no_reasoning, VlrbCategoryRule::kOfficial,
                                                 FailurePolicy::kExcludeFromDenominator);
  EXPECT_EQ(official.per_category.at("reasoning").total, 0);
  EXPECT_GE(official.excluded, 318);
  EXPECT_NEAR(official.macro,
              (official.per_category.at("general").Accuracy() + official.per_category.at("hallucination").Accuracy()) /
                  2,
              1e-12);
}

}  // namespace
}  // namespace r1r::eval
