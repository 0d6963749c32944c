#include "tools/cli/eval_command.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>
#include <nlohmann/json.hpp>

#include "common/config/flags.h"
#include "common/eval/judgement.h"
#include "common/eval/mm_rlhf_bench.h"
#include "common/eval/multimodal_rewardbench.h"
#include "common/eval/vl_rewardbench.h"
#include "common/reward/answer_order.h"
#include "tools/cli/cli_context.h"
#include "tools/cli/reward_client.h"
#include "tools/cli/table.h"

namespace r1r::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// One benchmark pair as the endpoint sees it, whatever the benchmark.
struct EvalRow {
  std::string question;
  std::string chosen;
  std::string rejected;
  std::string image;  // as written in the file; empty = text only
  bool is_video = false;
};

enum class RowState { kJudged, kMissingImage, kVideo, kFailed };

struct RowResult {
  RowState state = RowState::kFailed;
  eval::Outcome outcome = eval::Outcome::kUnparsed;  // after voting
  bool any_correct = false;
  int unparsed_samples = 0;
  std::string error;
};

struct RunSummary {
  std::vector<RowResult> rows;
  int64_t judged = 0, missing = 0, video = 0, failed = 0, unparsed_samples = 0, any_correct = 0;
  std::vector<std::string> missing_examples;
  std::string first_error;
  double seconds = 0;
};

std::string ResolveImage(const std::string& images_dir, const std::string& image) {
  if (image.empty() || fs::path(image).is_absolute() || images_dir.empty()) return image;
  return (fs::path(images_dir) / image).string();
}

// The votes of one Compare as per-sample outcomes against the preferred position.
std::vector<eval::Outcome> SampleOutcomes(const v1::CompareResponse& r, int preferred_position) {
  std::vector<eval::Outcome> out;
  const int right = preferred_position == 1 ? r.votes_for_1() : r.votes_for_2();
  const int wrong = preferred_position == 1 ? r.votes_for_2() : r.votes_for_1();
  out.insert(out.end(), static_cast<size_t>(right), eval::Outcome::kCorrect);
  out.insert(out.end(), static_cast<size_t>(wrong), eval::Outcome::kWrong);
  out.insert(out.end(), static_cast<size_t>(r.unparsed()), eval::Outcome::kUnparsed);
  return out;
}

struct JudgeSettings {
  int votes = 1;
  double temperature = 1.0;
  uint64_t seed = 1;
  int concurrency = 4;
  int max_new_tokens = 0;
  std::string images_dir;
};

// Sends every row to the endpoint, `concurrency` at a time. A transport or auth failure stops the run
// (returned as the status); a row the server rejects is counted as failed and the run goes on.
absl::StatusOr<RunSummary> JudgeRows(const std::vector<EvalRow>& rows, const JudgeSettings& s, const CliContext& ctx) {
  RunSummary sum;
  sum.rows.resize(rows.size());
  auto stub = v1::RewardModel::NewStub(ctx.channel);
  std::atomic<size_t> next{0};
  std::atomic<bool> abort{false};
  std::mutex mu;
  absl::Status fatal;
  const auto start = std::chrono::steady_clock::now();
  auto worker = [&]() {
    for (size_t i = next++; i < rows.size() && !abort; i = next++) {
      const EvalRow& row = rows[i];
      RowResult& out = sum.rows[i];
      if (row.is_video) {
        out.state = RowState::kVideo;
        continue;
      }
      const std::string image = ResolveImage(s.images_dir, row.image);
      v1::CompareRequest req;
      if (!image.empty()) {
        std::error_code ec;
        if (!fs::is_regular_file(image, ec)) {
          out.state = RowState::kMissingImage;
          out.error = image;
          continue;
        }
        auto bytes = ReadFileBytes(image);
        if (!bytes.ok()) {
          out.state = RowState::kMissingImage;
          out.error = image;
          continue;
        }
        req.mutable_image()->set_png_or_jpeg(*std::move(bytes));
      }
      // Seeded answer order per row index (the label follows the swap).
      const reward::OrderedPair pair = eval::OrderForJudging(row.chosen, row.rejected, /*randomize=*/true, s.seed, i);
      req.set_question(row.question);
      req.set_response1(pair.response1);
      req.set_response2(pair.response2);
      req.set_votes(s.votes);
      req.set_temperature(static_cast<float>(s.temperature));
      req.set_seed(reward::Mix64(s.seed ^ reward::Mix64(i)));
      req.set_max_new_tokens(s.max_new_tokens);
      auto resp = CallCompare(*stub, ctx.options, req);
      if (!resp.ok()) {
        const absl::StatusCode code = resp.status().code();
        if (code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kDeadlineExceeded ||
            code == absl::StatusCode::kUnauthenticated || code == absl::StatusCode::kPermissionDenied ||
            code == absl::StatusCode::kFailedPrecondition) {
          std::lock_guard<std::mutex> lock(mu);
          if (fatal.ok()) fatal = resp.status();
          abort = true;
        }
        out.state = RowState::kFailed;
        out.error = std::string(resp.status().message());
        continue;
      }
      const std::vector<eval::Outcome> samples = SampleOutcomes(*resp, pair.label);
      out.state = RowState::kJudged;
      out.unparsed_samples = resp->unparsed();
      if (samples.size() <= 1) {
        out.outcome = samples.empty() ? eval::Outcome::kUnparsed : samples.front();
      } else {
        out.outcome = eval::MajorityVote(samples);
      }
      out.any_correct = eval::AnyCorrect(samples);
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < std::max(1, s.concurrency); ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  if (!fatal.ok()) return fatal;
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (const RowResult& r : sum.rows) {
    switch (r.state) {
      case RowState::kJudged:
        ++sum.judged;
        sum.unparsed_samples += r.unparsed_samples;
        sum.any_correct += r.any_correct ? 1 : 0;
        break;
      case RowState::kMissingImage:
        ++sum.missing;
        if (sum.missing_examples.size() < 3) sum.missing_examples.push_back(r.error);
        break;
      case RowState::kVideo: ++sum.video; break;
      case RowState::kFailed:
        ++sum.failed;
        if (sum.first_error.empty()) sum.first_error = r.error;
        break;
    }
  }
  return sum;
}

std::string Pct(double x) { return absl::StrFormat("%.2f", 100.0 * x); }

json TallyJson(const eval::Tally& t) {
  return {{"accuracy", t.Accuracy()}, {"correct", t.correct}, {"total", t.total}};
}

void AddTallyRow(Table& table, const std::string& scoring, const std::string& name, const eval::Tally& t) {
  table.Add({scoring, name, absl::StrCat(t.correct), absl::StrCat(t.total), Pct(t.Accuracy())});
}

// The judged subset of `items`, aligned with its outcomes.
template <typename Item>
void JudgedSubset(const std::vector<Item>& items, const RunSummary& sum, std::vector<Item>* kept,
                  std::vector<eval::Outcome>* outcomes) {
  for (size_t i = 0; i < items.size(); ++i) {
    if (sum.rows[i].state != RowState::kJudged) continue;
    kept->push_back(items[i]);
    outcomes->push_back(sum.rows[i].outcome);
  }
}

json ScoreVlrb(const std::vector<eval::VlrbItem>& items, const RunSummary& sum, Table& table) {
  std::vector<eval::VlrbItem> kept;
  std::vector<eval::Outcome> outcomes;
  JudgedSubset(items, sum, &kept, &outcomes);
  struct Variant {
    const char* key;
    eval::VlrbCategoryRule rule;
    eval::FailurePolicy failures;
  };
  const Variant variants[] = {
      {"official", eval::VlrbCategoryRule::kOfficial, eval::FailurePolicy::kExcludeFromDenominator},
      {"official_unparsed_wrong", eval::VlrbCategoryRule::kOfficial, eval::FailurePolicy::kCountAsWrong},
      {"r1reward", eval::VlrbCategoryRule::kR1RewardSubstring, eval::FailurePolicy::kCountAsWrong},
      {"r1reward_unparsed_excluded", eval::VlrbCategoryRule::kR1RewardSubstring,
       eval::FailurePolicy::kExcludeFromDenominator},
  };
  json metrics;
  for (const Variant& v : variants) {
    const eval::VlrbScores s = eval::ScoreVlRewardBench(kept, outcomes, v.rule, v.failures);
    json categories = json::object();
    for (const auto& [name, tally] : s.per_category) {
      categories[name] = TallyJson(tally);
      AddTallyRow(table, v.key, name, tally);
    }
    AddTallyRow(table, v.key, "overall", s.overall);
    table.Add({v.key, "macro", "", "", Pct(s.macro)});
    metrics[v.key] = {{"overall_accuracy", s.overall.Accuracy()}, {"macro_accuracy", s.macro},
                      {"correct", s.overall.correct}, {"total", s.overall.total},
                      {"excluded", s.excluded},       {"categories", categories}};
  }
  metrics["overall_accuracy"] = metrics["official"]["overall_accuracy"];
  metrics["macro_accuracy"] = metrics["official"]["macro_accuracy"];
  return metrics;
}

json ScoreMmrb(const std::vector<eval::MmrbItem>& items, const RunSummary& sum, Table& table) {
  std::vector<eval::MmrbItem> kept;
  std::vector<eval::Outcome> outcomes;
  JudgedSubset(items, sum, &kept, &outcomes);
  struct Variant {
    const char* key;
    eval::TieRule ties;
  };
  json metrics;
  for (const Variant& v : {Variant{"coin_flip", eval::TieRule::kCoinFlip}, Variant{"ties_wrong", eval::TieRule::kWrong}}) {
    // The official scorer's tie draws: random.seed(123), whatever --seed ordered the answers.
    const eval::MmrbScores s = eval::ScoreMultimodalRewardBench(kept, outcomes, v.ties, eval::kMmrbOfficialTieSeed);
    json buckets = json::object();
    for (const auto& [name, tally] : s.per_bucket) {
      buckets[name] = TallyJson(tally);
      AddTallyRow(table, v.key, name, tally);
    }
    AddTallyRow(table, v.key, "all", s.all);
    metrics[v.key] = {{"all_accuracy", s.all.Accuracy()}, {"correct", s.all.correct}, {"total", s.all.total},
                      {"buckets", buckets}};
  }
  metrics["overall_accuracy"] = metrics["coin_flip"]["all_accuracy"];
  return metrics;
}

json ScoreMmRlhf(const std::vector<eval::MmRlhfBenchItem>& items, const RunSummary& sum, Table& table) {
  std::vector<eval::MmRlhfBenchItem> kept;
  std::vector<eval::Outcome> outcomes;
  JudgedSubset(items, sum, &kept, &outcomes);
  std::vector<bool> correct;
  for (eval::Outcome o : outcomes) correct.push_back(o == eval::Outcome::kCorrect);
  const eval::MmRlhfScores s = eval::ScoreMmRlhfRewardBench(kept, correct);
  auto group_json = [](const eval::MmRlhfGroupScores& g) {
    return json{{"acc", g.pairs.Accuracy()}, {"acc_plus", g.ids.Accuracy()}, {"pairs", g.pairs.total},
                {"pairs_correct", g.pairs.correct}, {"ids", g.ids.total}, {"ids_all_correct", g.ids.correct}};
  };
  json categories = json::object();
  for (const auto& [name, g] : s.per_category) {
    categories[name] = group_json(g);
    AddTallyRow(table, "acc", name, g.pairs);
    AddTallyRow(table, "acc+", name, g.ids);
  }
  AddTallyRow(table, "acc", "overall", s.overall.pairs);
  AddTallyRow(table, "acc+", "overall", s.overall.ids);
  json metrics = group_json(s.overall);
  metrics["categories"] = categories;
  return metrics;
}

int Usage(const std::string& message, const config::Flags& f) {
  std::fprintf(stderr,
               "%s\nusage: r1r eval --benchmark vl-rewardbench|multimodal-rewardbench|mm-rlhf-rewardbench --data FILE "
               "--images DIR [--votes K] [--seed S] [--limit N] [--json]\n%s",
               message.c_str(), f.Help().c_str());
  return kExitUsage;
}

}  // namespace

int EvalCommand(int argc, char** argv) {
  config::Flags f;
  AddClientFlags(f, "127.0.0.1:50056");
  f.Value("timeout", "600", "seconds per Compare call")
      .Value("benchmark", "", "vl-rewardbench | multimodal-rewardbench | mm-rlhf-rewardbench")
      .Value("data", "", "the benchmark file (JSONL, or all_data.json for Multimodal RewardBench)")
      .Value("images", "", "folder the rows' image paths are relative to")
      .Value("votes", "1", "K samples per pair for voting@K (1 = greedy)")
      .Value("temperature", "1.0", "sampling temperature when K > 1")
      .Value("seed", "1", "seed of the answer-order coin and of sampling")
      .Value("limit", "0", "judge only the first N rows (0 = all)")
      .Value("concurrency", "4", "Compare requests in flight")
      .Value("max-new-tokens", "0", "generation budget per sample (0 = the server's default)")
      .Switch("help", "print this help");
  if (absl::Status s = f.Parse(argc, argv, 2); !s.ok()) return Usage(std::string(s.message()), f);
  if (f.Has("help")) {
    std::printf("%s", f.Help().c_str());
    return kExitOk;
  }
  const std::string benchmark = f.Get("benchmark");
  if (f.Get("data").empty()) return Usage("--data is required", f);
  JudgeSettings settings;
  auto votes = f.GetInt("votes");
  auto temperature = f.GetDouble("temperature");
  auto seed = f.GetInt("seed");
  auto limit = f.GetInt("limit");
  auto concurrency = f.GetInt("concurrency");
  auto max_new = f.GetInt("max-new-tokens");
  for (const absl::Status& s : {votes.status(), temperature.status(), seed.status(), limit.status(),
                                concurrency.status(), max_new.status()}) {
    if (!s.ok()) return Usage(std::string(s.message()), f);
  }
  if (*concurrency < 1 || *concurrency > 256) return Usage("--concurrency must be 1..256", f);
  if (*limit < 0) return Usage("--limit must be >= 0", f);
  settings.votes = static_cast<int>(*votes);
  settings.temperature = *temperature;
  settings.seed = static_cast<uint64_t>(*seed);
  settings.concurrency = static_cast<int>(*concurrency);
  settings.max_new_tokens = static_cast<int>(*max_new);
  settings.images_dir = f.Get("images");

  // Read the benchmark into its own items and into the common row shape.
  jsonl::ReadReport report;
  std::vector<EvalRow> rows;
  std::vector<eval::VlrbItem> vlrb;
  std::vector<eval::MmrbItem> mmrb;
  std::vector<eval::MmRlhfBenchItem> mmrlhf;
  auto truncate = [&](auto& items) {
    if (*limit > 0 && static_cast<int64_t>(items.size()) > *limit) items.resize(static_cast<size_t>(*limit));
  };
  if (benchmark == "vl-rewardbench") {
    auto items = eval::ReadVlRewardBench(f.Get("data"), report);
    if (!items.ok()) return Fail(items.status());
    vlrb = *std::move(items);
    truncate(vlrb);
    for (const auto& it : vlrb) rows.push_back({it.query, it.chosen(), it.rejected(), it.image_path, false});
  } else if (benchmark == "multimodal-rewardbench") {
    auto items = eval::ReadMultimodalRewardBench(f.Get("data"), report);
    if (!items.ok()) return Fail(items.status());
    mmrb = *std::move(items);
    truncate(mmrb);
    for (const auto& it : mmrb) {
      rows.push_back({it.text, it.better == 1 ? it.output1 : it.output2, it.better == 1 ? it.output2 : it.output1,
                      it.image, false});
    }
  } else if (benchmark == "mm-rlhf-rewardbench") {
    auto items = eval::ReadMmRlhfRewardBench(f.Get("data"), report);
    if (!items.ok()) return Fail(items.status());
    mmrlhf = *std::move(items);
    truncate(mmrlhf);
    for (const auto& it : mmrlhf) rows.push_back({it.prompt, it.chosen, it.rejected, it.media_path, it.is_video});
  } else {
    return Usage("--benchmark must be vl-rewardbench, multimodal-rewardbench or mm-rlhf-rewardbench", f);
  }
  if (report.bad_count > 0) std::fprintf(stderr, "warning: %s\n", report.Summary().c_str());

  auto ctx = MakeContext(f);
  if (!ctx.ok()) return Fail(ctx.status());
  auto sum = JudgeRows(rows, settings, *ctx);
  if (!sum.ok()) return Fail(sum.status());

  Table table({"SCORING", "CATEGORY", "CORRECT", "TOTAL", "ACCURACY %"});
  json metrics;
  if (benchmark == "vl-rewardbench") {
    metrics = ScoreVlrb(vlrb, *sum, table);
  } else if (benchmark == "multimodal-rewardbench") {
    metrics = ScoreMmrb(mmrb, *sum, table);
  } else {
    metrics = ScoreMmRlhf(mmrlhf, *sum, table);
  }
  const double any_at_k = sum->judged > 0 ? static_cast<double>(sum->any_correct) / static_cast<double>(sum->judged) : 0;
  if (settings.votes > 1) metrics["any_at_k"] = any_at_k;

  if (ctx->json) {
    json out = {{"benchmark", benchmark},
                {"data", f.Get("data")},
                {"rows", rows.size()},
                {"bad_rows", report.bad_count},
                {"judged", sum->judged},
                {"missing_images", sum->missing},
                {"skipped_video", sum->video},
                {"failed", sum->failed},
                {"unparsed_samples", sum->unparsed_samples},
                {"votes", settings.votes},
                {"seed", settings.seed},
                {"seconds", sum->seconds},
                {"metrics", metrics}};
    std::printf("%s\n", out.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
  } else {
    std::printf("%s: %zu rows, %lld judged, %lld missing images, %lld video rows skipped, %lld failed, "
                "%lld unparsed samples; votes %d, seed %llu, %.1f s\n\n%s",
                benchmark.c_str(), rows.size(), static_cast<long long>(sum->judged), static_cast<long long>(sum->missing),
                static_cast<long long>(sum->video), static_cast<long long>(sum->failed),
                static_cast<long long>(sum->unparsed_samples), settings.votes,
                static_cast<unsigned long long>(settings.seed), sum->seconds, table.Render().c_str());
    if (settings.votes > 1) std::printf("any@%d: %s%%\n", settings.votes, Pct(any_at_k).c_str());
  }
  std::fflush(stdout);
  for (const std::string& m : sum->missing_examples) std::fprintf(stderr, "missing image: %s\n", m.c_str());
  if (!sum->first_error.empty()) std::fprintf(stderr, "first failed row: %s\n", sum->first_error.c_str());
  return sum->judged == 0 && !rows.empty() && sum->failed > 0 ? kExitFailure : kExitOk;
}

}  // namespace r1r::cli
