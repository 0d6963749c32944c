// Readers (bad rows with file:line), balancing, difficulty split, shuffling/sharding/cursors and the
// synthetic task (reproducible, readable by the R1-Reward reader, internally consistent).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/jsonl/jsonl.h"
#include "common/data/png_io.h"
#include "common/data/readers.h"
#include "common/data/synthetic.h"
#include "common/data/transforms.h"
#include "common/files/remove_tree.h"
#include "common/reward/prompt_template.h"
#include "common/reward/referee.h"
#include "common/reward/rewards.h"

namespace r1r::data {
namespace {

namespace fs = std::filesystem;

std::string FreshDir(const std::string& name) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("r1r_data_" + name);
  EXPECT_TRUE(r1r::files::RemoveTree(dir).ok()) << dir;
  fs::create_directories(dir);
  return dir.string();
}

void WriteFile(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

PreferenceSample Sample(std::string id, int label) {
  PreferenceSample s;
  s.id = std::move(id);
  s.question = "How many red circles are in the image?";
  s.response1 = "There are 2 red circles in the image.";
  s.response2 = "There are 3 red circles in the image.";
  s.label = label;
  s.image_path = "images/a.png";
  return s;
}

TEST(data, R1RewardReaderCountsBadRowsWithFileAndLine) {
  const std::string dir = FreshDir("bad_rows");
  const std::string path = dir + "/rows.jsonl";
  ASSERT_TRUE(WriteR1RewardJsonl(path, {Sample("good", 2)}).ok());
  std::string text = ReadAll(path);
  text += "{not json\n";
  text += "\n";  // blank lines are not rows
  text += R"({"question": "q", "message": "[]"})" "\n";
  text += R"({"question": "q", "message": "[{\"role\":\"user\",\"content\":\"hi\"}]", "answer": ["<answer>1</answer>"]})" "\n";
  text += R"({"question": "q", "message": "[]", "answer": ["<answer>3</answer>"]})" "\n";
  text += "[1, 2]\n";
  WriteFile(path, text);

  jsonl::ReadReport report;
  auto samples = ReadR1RewardJsonl(path, report);
  ASSERT_TRUE(samples.ok()) << samples.status();
  ASSERT_EQ(samples->size(), 1u);
  EXPECT_EQ((*samples)[0].label, 2);
  EXPECT_EQ(report.rows_seen, 6);
  EXPECT_EQ(report.rows_ok, 1);
  EXPECT_EQ(report.bad_count, 5);
  ASSERT_EQ(report.bad_rows.size(), 5u);
  EXPECT_EQ(report.bad_rows[0].file, path);
  EXPECT_EQ(report.bad_rows[0].line, 2);
  EXPECT_EQ(report.bad_rows[0].reason, "not valid JSON");
  EXPECT_EQ(report.bad_rows[1].line, 4);
  EXPECT_EQ(report.bad_rows[1].reason, "'answer' must be a non-empty list");
  EXPECT_EQ(report.bad_rows[2].line, 5);
  EXPECT_NE(report.bad_rows[2].reason.find("template"), std::string::npos);
  EXPECT_EQ(report.bad_rows[3].line, 6);
  EXPECT_NE(report.bad_rows[3].reason.find("label must be 1 or 2"), std::string::npos);
  EXPECT_EQ(report.bad_rows[4].line, 7);
  EXPECT_NE(report.Summary().find(path + ":2: not valid JSON"), std::string::npos);

  jsonl::ReadReport missing;
  EXPECT_FALSE(ReadR1RewardJsonl(dir + "/nope.jsonl", missing).ok());
}

// Rows that threw nlohmann::type_error before (content part "type": 5 or null): each is a bad row with
// file:line and the reason, the good rows around them are read, and nothing escapes the reader.
TEST(data, R1RewardRowsWithBadContentTypesAreBadRowsNotExceptions) {
  const std::string dir = FreshDir("bad_types");
  const std::string path = dir + "/rows.jsonl";
  ASSERT_TRUE(WriteR1RewardJsonl(path, {Sample("good", 1)}).ok());
  std::string text = ReadAll(path);
  for (const char* type : {"5", "null"}) {
    text += absl::StrCat(R"({"message": "[{\"role\":\"user\",\"content\":[{\"type\":)", type,
                         R"(,\"text\":\"q\"}]}]", "answer": ["<answer>1</answer>"]})", "\n");
  }
  text += ReadAll(path);  // a good row after the bad ones
  WriteFile(path, text);

  jsonl::ReadReport report;
  absl::StatusOr<std::vector<PreferenceSample>> samples;
  ASSERT_NO_THROW(samples = ReadR1RewardJsonl(path, report));
  ASSERT_TRUE(samples.ok()) << samples.status();
  EXPECT_EQ(samples->size(), 2u);
  ASSERT_EQ(report.bad_count, 2) << report.Summary();
  EXPECT_EQ(report.bad_rows[0].line, 2);
  EXPECT_EQ(report.bad_rows[1].line, 3);
  EXPECT_NE(report.bad_rows[0].reason.find("got 5"), std::string::npos) << report.bad_rows[0].reason;
  EXPECT_NE(report.bad_rows[1].reason.find("got null"), std::string::npos) << report.bad_rows[1].reason;
  EXPECT_NE(report.Summary().find(path + ":2: 'message': content part 'type'"), std::string::npos)
      << report.Summary();
}

// A label nested 200k deep in one row: the reason names its type (dump() recursed off the stack).
TEST(data, DeeplyNestedLabelIsABadRow) {
  const std::string path = FreshDir("deep_label") + "/rows.jsonl";
  WriteFile(path, R"({"question": "q", "response1": "a", "response2": "b", "label": )" + std::string(200000, '[') +
                      std::string(200000, ']') + "}\n");
  jsonl::ReadReport report;
  auto samples = ReadPlainPairsJsonl(path, report);
  ASSERT_TRUE(samples.ok()) << samples.status();
  ASSERT_EQ(report.bad_count, 1);
  EXPECT_EQ(report.bad_rows[0].reason, "label must be 1 or 2, got array");
}

// The backstop: a row callback that throws a JSON exception costs its row, named by file:line.
TEST(data, JsonlRowCallbackExceptionsBecomeBadRows) {
  const std::string path = FreshDir("throwing_callback") + "/rows.jsonl";
  WriteFile(path, "{\"a\": 1}\n{\"a\": \"x\"}\n{\"b\": 2}\n");
  jsonl::ReadReport report;
  std::vector<int> kept;
  absl::Status s;
  ASSERT_NO_THROW(s = jsonl::ForEachJsonlRow(path, report, [&](const nlohmann::json& row, int64_t) {
                    kept.push_back(row.at("a").get<int>());  // throws on lines 2 and 3
                    return absl::OkStatus();
                  }));
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(kept, std::vector<int>{1});
  ASSERT_EQ(report.bad_count, 2);
  EXPECT_EQ(report.bad_rows[0].line, 2);
  EXPECT_EQ(report.bad_rows[1].line, 3);
  EXPECT_NE(report.bad_rows[0].reason.find("unexpected JSON value"), std::string::npos);
}

TEST(data, R1RewardLayoutRoundTrip) {
  const std::string dir = FreshDir("r1_roundtrip");
  PreferenceSample s = Sample("x1", 1);
  s.response2 = "Multi-line\nresponse with {braces} and \"quotes\"";
  ASSERT_TRUE(WriteR1RewardJsonl(dir + "/r.jsonl", {s}).ok());
  jsonl::ReadReport report;
  auto back = ReadR1RewardJsonl(dir + "/r.jsonl", report);
  ASSERT_TRUE(back.ok());
  ASSERT_EQ(back->size(), 1u);
  const PreferenceSample& b = (*back)[0];
  EXPECT_EQ(b.id, "x1");
  EXPECT_EQ(b.question, s.question);
  EXPECT_EQ(b.response1, s.response1);
  EXPECT_EQ(b.response2, s.response2);
  EXPECT_EQ(b.label, 1);
  EXPECT_EQ(b.image_path, (fs::path(dir) / "images/a.png").string());  // resolved against the file
  EXPECT_EQ(b.source, "r1reward");
}

TEST(data, MmRlhfPairsReaderOnFixture) {
  const std::string path = std::string(R1R_SOURCE_DIR) + "/tests/fixtures/benchmarks/mm_rlhf_rewardbench_sample.jsonl";
  jsonl::ReadReport report;
  auto pairs = ReadMmRlhfPairsJsonl(path, report);
  ASSERT_TRUE(pairs.ok()) << pairs.status();
  EXPECT_EQ(report.bad_count, 0) << report.Summary();
  ASSERT_EQ(pairs->size(), 12u);
  EXPECT_EQ((*pairs)[0].label, 1);
  EXPECT_FALSE((*pairs)[0].is_video);
  EXPECT_TRUE(pairs->back().is_video);
  EXPECT_EQ((*pairs)[0].response1.rfind("Yes", 0), 0u);
}

TEST(data, PlainPairsRoundTripAndValidation) {
  const std::string dir = FreshDir("plain");
  PreferenceSample s = Sample("p1", 2);
  s.teacher_attempts = 3;
  s.teacher_solved = false;
  s.reasoning = "<think>Response 2 is better.</think><answer>2</answer>";
  ASSERT_TRUE(WritePlainPairsJsonl(dir + "/p.jsonl", {s, Sample("p2", 1)}).ok());
  std::string text = ReadAll(dir + "/p.jsonl");
  text += R"({"question": "q", "response1": "a", "response2": "b", "label": 0})" "\n";
  text += R"({"question": "q", "response1": "a", "response2": "b", "label": "2", "teacher_attempts": -1})" "\n";
  WriteFile(dir + "/p.jsonl", text);
  jsonl::ReadReport report;
  auto back = ReadPlainPairsJsonl(dir + "/p.jsonl", report);
  ASSERT_TRUE(back.ok());
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[0].teacher_attempts, 3);
  EXPECT_FALSE((*back)[0].teacher_solved);
  EXPECT_EQ((*back)[0].reasoning, s.reasoning);
  EXPECT_FALSE((*back)[1].reasoning.has_value());
  EXPECT_EQ(report.bad_count, 2);
  EXPECT_EQ(report.bad_rows[0].line, 3);
  EXPECT_EQ(report.bad_rows[1].line, 4);
}

TEST(data, BalanceLabelsBySwapping) {
  std::vector<PreferenceSample> samples;
  for (int i = 0; i < 7; ++i) samples.push_back(Sample("a" + std::to_string(i), 1));
  samples.push_back(Sample("b", 2));
  samples[0].reasoning = "<think>Response 1 is better than response 2.</think><answer>1</answer>";
  const auto before = samples;
  EXPECT_EQ(BalanceLabels(samples, 9), 3u);
  int ones = 0;
  for (size_t i = 0; i < samples.size(); ++i) {
    ones += samples[i].label == 1 ? 1 : 0;
    if (samples[i].label != before[i].label) {
      EXPECT_EQ(samples[i].response1, before[i].response2);  // the pair is the same, only the order changed
      EXPECT_EQ(samples[i].response2, before[i].response1);
    }
  }
  EXPECT_EQ(ones, 4);
  PreferenceSample traced = before[0];
  SwapResponses(traced);
  EXPECT_EQ(*traced.reasoning, "<think>Response 2 is better than response 1.</think><answer>2</answer>");
  EXPECT_EQ(traced.label, 2);
}

TEST(data, DifficultySplitFollowsTeacherAttempts) {
  std::vector<PreferenceSample> s(4, Sample("x", 1));
  s[0].teacher_attempts = 1;                              // easy: SFT only
  s[1].teacher_attempts = 2;                              // hard
  s[2].teacher_attempts = 3, s[2].teacher_solved = false;  // never right: hard
  s[3].teacher_attempts = 0;                              // unknown: RL
  const DifficultySplit rest = SplitByDifficulty(s, SftSelection::kRest);
  EXPECT_EQ(rest.rl.size(), 3u);
  EXPECT_EQ(rest.sft.size(), 1u);
  EXPECT_EQ(SplitByDifficulty(s, SftSelection::kAll).sft.size(), 4u);
  const DifficultySplit rl_all = SplitByDifficulty(s, SftSelection::kRest, RlSelection::kAll);
  EXPECT_EQ(rl_all.rl.size(), 4u);
  EXPECT_EQ(rl_all.sft.size(), 1u);
}

TEST(data, ShuffleShardAndResumableCursor) {
  const std::vector<size_t> a = ShuffledIndices(50, 3), b = ShuffledIndices(50, 3), c = ShuffledIndices(50, 4);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_EQ(std::set<size_t>(a.begin(), a.end()).size(), 50u);
  std::set<size_t> seen;
  for (int rank = 0; rank < 3; ++rank) {
    const std::vector<size_t> shard = ShardIndices(a, rank, 3);
    EXPECT_EQ(shard.size(), 16u);  // 50 - 50 % 3 = 48 usable
    for (size_t i : shard) EXPECT_TRUE(seen.insert(i).second);
  }

  EpochSampler full(10, 0, 1, DataCursor{7, 0, 0});
  std::vector<std::vector<size_t>> batches;
  std::string saved;
  for (int k = 0; k < 5; ++k) {
    if (k == 2) saved = full.cursor().Serialize();
    batches.push_back(full.NextBatch(4));  // crosses epochs after 10 items
  }
  std::multiset<size_t> first_epoch(batches[0].begin(), batches[0].end());
  first_epoch.insert(batches[1].begin(), batches[1].end());
  first_epoch.insert(batches[2].begin(), batches[2].begin() + 2);
  EXPECT_EQ(std::set<size_t>(first_epoch.begin(), first_epoch.end()).size(), 10u);  // a permutation per epoch

  auto cursor = DataCursor::Parse(saved);
  ASSERT_TRUE(cursor.ok()) << cursor.status();
  EXPECT_EQ(*cursor, (DataCursor{7, 0, 8}));
  EpochSampler resumed(10, 0, 1, *cursor);
  for (int k = 2; k < 5; ++k) EXPECT_EQ(resumed.NextBatch(4), batches[static_cast<size_t>(k)]);
  EXPECT_EQ(resumed.cursor(), full.cursor());
  EXPECT_FALSE(DataCursor::Parse("r1r-cursor-v1 1 2").ok());

  // Two ranks: equal, disjoint shards of every epoch.
  EpochSampler rank0(11, 0, 2, DataCursor{3, 0, 0}), rank1(11, 1, 2, DataCursor{3, 0, 0});
  const std::vector<size_t> a0 = rank0.NextBatch(5), a1 = rank1.NextBatch(5);
  std::set<size_t> both(a0.begin(), a0.end());
  both.insert(a1.begin(), a1.end());
  EXPECT_EQ(both.size(), 10u);  // 11 - 11 % 2 items per epoch, none shared
  EXPECT_EQ(rank0.cursor(), rank1.cursor());
  EXPECT_FALSE(DataCursor::Parse("r1r-cursor-v1 1 2 3 4").ok());
}

TEST(data, SyntheticIsReproducible) {
  SynthOptions o;
  o.n = 24;
  o.seed = 5;
  const std::string d1 = FreshDir("synth1"), d2 = FreshDir("synth2"), d3 = FreshDir("synth3");
  ASSERT_TRUE(WriteSyntheticDataset(o, d1).ok());
  ASSERT_TRUE(WriteSyntheticDataset(o, d2).ok());
  for (const char* f : {"r1reward.jsonl", "pairs.jsonl", "manifest.json", "images/synth_000007.png"}) {
    EXPECT_EQ(ReadAll(d1 + "/" + f), ReadAll(d2 + "/" + f)) << f;
  }
  o.seed = 6;
  ASSERT_TRUE(WriteSyntheticDataset(o, d3).ok());
  EXPECT_NE(ReadAll(d1 + "/pairs.jsonl"), ReadAll(d3 + "/pairs.jsonl"));
  // Item i does not depend on n.
  SynthOptions small = o;
  small.n = 3;
  EXPECT_EQ(GenerateSyntheticItem(small, 2).sample.reasoning, GenerateSyntheticItem(o, 2).sample.reasoning);
  SynthOptions bad = o;
  bad.image_size = 300;
  EXPECT_FALSE(WriteSyntheticDataset(bad, FreshDir("synth_bad")).ok());
}

TEST(data, SyntheticIsReadableByR1RewardReaderAndConsistent) {
  SynthOptions o;
  o.n = 40;
  o.seed = 11;
  o.image_size = 72;
  const std::string dir = FreshDir("synth_read");
  ASSERT_TRUE(WriteSyntheticDataset(o, dir).ok());
  jsonl::ReadReport r1_report, pairs_report;
  auto r1 = ReadR1RewardJsonl(dir + "/r1reward.jsonl", r1_report);
  auto pairs = ReadPlainPairsJsonl(dir + "/pairs.jsonl", pairs_report);
  ASSERT_TRUE(r1.ok() && pairs.ok());
  EXPECT_EQ(r1_report.bad_count, 0) << r1_report.Summary();
  ASSERT_EQ(r1->size(), 40u);
  ASSERT_EQ(pairs->size(), 40u);
  for (size_t i = 0; i < r1->size(); ++i) {
    const PreferenceSample& a = (*r1)[i];
    const PreferenceSample& b = (*pairs)[i];
    EXPECT_EQ(a.id, b.id);
    EXPECT_EQ(a.label, b.label);
    EXPECT_EQ(a.response1, b.response1);
    EXPECT_EQ(a.image_path, b.image_path);
    auto png = ReadPng(a.image_path);
    ASSERT_TRUE(png.ok()) << png.status();
    EXPECT_EQ(png->width, 72);
    EXPECT_EQ(png->height, 72);
  }
}

// The responses alone must not give the answer away: for every pair of stated counts, the best guess
// from the text (the count that is more often true for that pair) is right about half of the time.
TEST(data, SyntheticResponsesAloneAreNoBetterThanACoin) {
  SynthOptions o;
  o.seed = 5;
  o.questions = {SynthQuestion::kAll};
  std::map<std::pair<int, int>, std::pair<int, int>> lower_true;  // pair -> (lower is true, total)
  std::map<std::pair<int, int>, std::pair<int, int>> hard_lower_true;  // the same within the RL split
  int adjacent = 0, hard = 0;
  const int n = 6000;
  for (int i = 0; i < n; ++i) {
    const SyntheticItem item = GenerateSyntheticItem(o, i);
    ASSERT_GE(item.true_count, 1);
    ASSERT_LE(item.true_count, o.max_count);
    ASSERT_GE(item.wrong_count, 1);
    ASSERT_LE(item.wrong_count, o.max_count);
    const int low = std::min(item.true_count, item.wrong_count), high = std::max(item.true_count, item.wrong_count);
    adjacent += high == low + 1 ? 1 : 0;
    for (auto* counts : {&lower_true, &hard_lower_true}) {
      if (counts == &hard_lower_true && !IsHardForTeacher(item.sample)) continue;
      auto& [lower, total] = (*counts)[{low, high}];
      lower += item.true_count == low ? 1 : 0;
      ++total;
    }
    hard += IsHardForTeacher(item.sample) ? 1 : 0;
  }
  int best_guess_right = 0;
  for (const auto& [pair, counts] : lower_true) best_guess_right += std::max(counts.first, counts.second - counts.first);
  EXPECT_LT(static_cast<double>(best_guess_right) / n, 0.53);  // the old generator allowed 0.64
  // Nor within the hard items RL trains on (a difficulty read off the true count allowed 0.70 there).
  int hard_best_guess_right = 0;
  for (const auto& [pair, counts] : hard_lower_true) {
    hard_best_guess_right += std::max(counts.first, counts.second - counts.first);
  }
  ASSERT_GT(hard, n / 10);
  EXPECT_LT(static_cast<double>(hard_best_guess_right) / hard, 0.55);
  EXPECT_NEAR(static_cast<double>(adjacent) / n, 0.8 + 0.2 * 6.0 / 12.0, 0.03);  // off by one is the usual mistake
}

TEST(data, SyntheticListTraceNamesTheCountedShapesInOrder) {
  EXPECT_FALSE(ParseSynthTrace("essay").ok());
  SynthOptions o;
  o.seed = 3;
  o.questions = {SynthQuestion::kAll};
  o.trace = SynthTrace::kList;
  o.teacher_mistake_rate = 0.3;
  int right = 0, wrong = 0;
  for (int i = 0; i < 60; ++i) {
    const SyntheticItem item = GenerateSyntheticItem(o, i);
    const std::string& trace = *item.sample.reasoning;
    const int count = item.teacher_trace_correct ? item.true_count : item.wrong_count;
    (item.teacher_trace_correct ? right : wrong)++;
    EXPECT_NE(trace.find(absl::StrCat(". I find ", count, ".")), std::string::npos) << trace;
    EXPECT_NE(trace.find(absl::StrCat(" ", count, " ")), std::string::npos) << trace;  // the last listed number
    if (item.teacher_trace_correct) {
      // Every drawn shape is named once, in palette (red, green, blue, yellow) then shape order.
      std::vector<std::pair<int, int>> drawn;
      for (const DrawnShape& d : item.shapes) drawn.push_back({d.colour, static_cast<int>(d.kind)});
      std::sort(drawn.begin(), drawn.end());
      const char* colours[] = {"red", "green", "blue", "yellow"};
      const char* kinds[] = {"circle", "square", "triangle"};
      size_t at = trace.find("one by one: ");
      ASSERT_NE(at, std::string::npos);
      for (size_t k = 0; k < drawn.size(); ++k) {
        const std::string name = absl::StrCat(k + 1, " ", colours[drawn[k].first], " ", kinds[drawn[k].second]);
        const size_t next = trace.find(name, at);
        ASSERT_NE(next, std::string::npos) << name << " in " << trace;
        at = next;
      }
    }
    EXPECT_EQ(reward::RuleRefereeVerdict(trace), reward::Consistency::kConsistent);
  }
  EXPECT_GT(right, 20);
  EXPECT_GT(wrong, 5);
}

TEST(data, SyntheticQuestionKindsCountWhatTheyAsk) {
  EXPECT_FALSE(ParseSynthQuestion("size").ok());
  SynthOptions o;
  o.seed = 9;
  o.max_distractors = 3;
  o.questions = {SynthQuestion::kAll, SynthQuestion::kColour};
  int all = 0, colour = 0;
  for (int i = 0; i < 200; ++i) {
    const SyntheticItem item = GenerateSyntheticItem(o, i);
    const std::string& q = item.sample.question;
    if (q == "How many shapes are in the image?") {
      ++all;  // every drawn shape counts, whatever its colour or kind
      EXPECT_EQ(static_cast<int>(item.shapes.size()), item.true_count) << i;
    } else {
      ++colour;  // "How many <colour> shapes …": the shapes of that colour, of any kind
      int same_colour = 0;
      for (const DrawnShape& d : item.shapes) same_colour += d.colour == item.shapes[0].colour ? 1 : 0;
      EXPECT_EQ(same_colour, item.true_count) << q;
      EXPECT_NE(q.find(" shapes are in the image?"), std::string::npos) << q;
    }
    EXPECT_NE(item.sample.reasoning->find("The question asks: " + q), std::string::npos);
    EXPECT_EQ(reward::RuleRefereeVerdict(*item.sample.reasoning), reward::Consistency::kConsistent);
  }
  EXPECT_GT(all, 60);
  EXPECT_GT(colour, 60);
  // The default single kind asks for a colour and a kind.
  SynthOptions single;
  single.seed = 9;
  for (int i = 0; i < 20; ++i) {
    const std::string q = GenerateSyntheticItem(single, i).sample.question;
    EXPECT_EQ(q.find(" shapes are"), std::string::npos) << q;
  }
  SynthOptions none = single;
  none.questions.clear();
  EXPECT_FALSE(ValidateSynthOptions(none).ok());
}

TEST(data, SyntheticAnswersComeFromTheDrawing) {
  SynthOptions o;
  o.seed = 3;
  o.teacher_mistake_rate = 0.25;
  int wrong_traces = 0, hard = 0, label1 = 0;
  double attempts_easy = 0, attempts_hard = 0;
  int n_easy = 0, n_hard = 0;
  const int n = 400;
  for (int i = 0; i < n; ++i) {
    const SyntheticItem item = GenerateSyntheticItem(o, i);
    const PreferenceSample& s = item.sample;
    // The drawing holds exactly true_count shapes of the asked kind and colour, and they show in pixels.
    int target = 0;
    for (const DrawnShape& d : item.shapes) {
      target += (d.kind == item.shapes[0].kind && d.colour == item.shapes[0].colour) ? 1 : 0;
      const uint8_t* centre = item.image.At(d.cx, d.cy);
      EXPECT_FALSE(centre[0] == 245 && centre[1] == 245 && centre[2] == 245) << "shape not drawn, item " << i;
    }
    EXPECT_EQ(target, item.true_count);
    const std::string& right = s.label == 1 ? s.response1 : s.response2;
    const std::string& wrong = s.label == 1 ? s.response2 : s.response1;
    EXPECT_NE(right.find(std::to_string(item.true_count) + " "), std::string::npos) << right;
    EXPECT_NE(item.true_count, item.wrong_count);
    EXPECT_EQ(right.find(std::to_string(item.wrong_count) + " "), std::string::npos);
    (void)wrong;
    // The trace is well formed, consistent by the rule referee, and right iff the teacher was.
    ASSERT_TRUE(s.reasoning.has_value());
    EXPECT_EQ(reward::FormatReward(*s.reasoning), 1.0);
    EXPECT_EQ(reward::RuleRefereeVerdict(*s.reasoning), reward::Consistency::kConsistent);
    EXPECT_EQ(reward::ResultReward(*s.reasoning, std::to_string(s.label)), item.teacher_trace_correct ? 1.0 : 0.0);
    wrong_traces += item.teacher_trace_correct ? 0 : 1;
    hard += IsHardForTeacher(s) ? 1 : 0;
    label1 += s.label == 1 ? 1 : 0;
    if (item.difficulty == 0) attempts_easy += s.teacher_attempts, ++n_easy;
    if (item.difficulty == 2) attempts_hard += s.teacher_attempts, ++n_hard;
  }
  EXPECT_NEAR(wrong_traces / double(n), 0.25, 0.07);
  EXPECT_NEAR(label1 / double(n), 0.5, 0.08);
  EXPECT_GT(hard, n / 10);
  EXPECT_LT(hard, n);
  ASSERT_GT(n_easy, 10);
  ASSERT_GT(n_hard, 10);
  EXPECT_LT(attempts_easy / n_easy, attempts_hard / n_hard);  // harder scenes need more teacher attempts
}

}  // namespace
}  // namespace r1r::data
