// Hostile job specs (issue 16): every out-of-range value is rejected by ParseJobSpec with the field's
// path, before any arithmetic on it (a zero or INT64_MIN head count used to reach a modulo: SIGFPE in the
// orchestrator's SubmitJob and in `r1r submit --dry-run`), and the dry-run plan survives a bad config.json.
#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/config/job_spec.h"
#include "common/config/plan.h"

namespace r1r::config {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string ErrorOf(const std::string& yaml) {
  auto spec = ParseJobSpec(yaml);
  EXPECT_FALSE(spec.ok()) << yaml;
  return spec.ok() ? "" : std::string(spec.status().message());
}

std::string WithTiny(const std::string& tiny) {
  return "name: t\nmodel: {init: tiny, tiny: {" + tiny + "}}\ndata: {source: synthetic, synthetic_n: 3}\n";
}

std::string WithSection(const std::string& section, const std::string& body) {
  const std::string data = section == "data" ? "{source: synthetic, synthetic_n: 3, " + body + "}"
                                             : "{source: synthetic, synthetic_n: 3}";
  std::string yaml = "name: t\nmodel: {init: tiny}\ndata: " + data + "\n";
  if (section != "data") yaml += section + ": {" + body + "}\n";
  return yaml;
}

TEST(config, HeadCountsAreCheckedBeforeTheyDivide) {
  EXPECT_THAT(ErrorOf(WithTiny("num_kv_heads: 0")), HasSubstr("model.tiny.num_kv_heads: must be in [1, 1024], got 0"));
  EXPECT_THAT(ErrorOf(WithTiny("num_heads: 0")), HasSubstr("model.tiny.num_heads: must be in [1, 1024], got 0"));
  EXPECT_THAT(ErrorOf(WithTiny("num_heads: -4, num_kv_heads: -1")), HasSubstr("model.tiny.num_heads"));
  // INT64_MIN % -1 traps like a division by zero.
  EXPECT_THAT(ErrorOf(WithTiny("num_heads: -9223372036854775808, num_kv_heads: -1")),
              HasSubstr("model.tiny.num_kv_heads: must be in [1, 1024]"));
  EXPECT_THAT(ErrorOf(WithTiny("vision_heads: 0")), HasSubstr("model.tiny.vision_heads: must be in [1, 1024], got 0"));
  EXPECT_THAT(ErrorOf(WithSection("rl", "train_batch_size: 0")),
              HasSubstr("rl.train_batch_size: must be in [1, 65536], got 0"));
  EXPECT_THAT(ErrorOf(WithSection("rl", "rollout_batch_size: -9223372036854775808, train_batch_size: -1")),
              HasSubstr("rl.rollout_batch_size"));
}

// Values the model builder would reject later as "config.json: ..." are reported here, under model.tiny.
TEST(config, TinyModelSizesNameTheirField) {
  EXPECT_THAT(ErrorOf(WithTiny("intermediate_size: 0")), HasSubstr("model.tiny.intermediate_size: must be in"));
  EXPECT_THAT(ErrorOf(WithTiny("intermediate_size: -5")), Not(HasSubstr("config.json")));
  EXPECT_THAT(ErrorOf(WithTiny("vision_hidden_size: 0")), HasSubstr("model.tiny.vision_hidden_size"));
  EXPECT_THAT(ErrorOf(WithTiny("vision_hidden_size: 30, vision_heads: 2")),  // head size 15
              HasSubstr("model.tiny.vision_heads: must divide vision_hidden_size into heads of a multiple of 4"));
  EXPECT_THAT(ErrorOf(WithTiny("hidden_size: 12, num_heads: 4, num_kv_heads: 2")),  // head size 3
              HasSubstr("model.tiny.num_heads: must leave an even head size"));
  EXPECT_THAT(ErrorOf(WithTiny("hidden_size: 9223372036854775807")), HasSubstr("model.tiny.hidden_size"));
  auto ok = ParseJobSpec(WithTiny("hidden_size: 96, num_heads: 6, num_kv_heads: 3, vision_hidden_size: 48, "
                                  "vision_heads: 3, intermediate_size: 200"));
  EXPECT_TRUE(ok.ok()) << ok.status();
}

TEST(config, NanAndHugeValuesAreRejected) {
  EXPECT_THAT(ErrorOf(WithSection("sft", "optim: {adam_betas: [.nan, 0.95]}")),
              HasSubstr("sft.optim.adam_betas: must be a list of finite numbers"));
  EXPECT_THAT(ErrorOf(WithSection("rl", "optim: {adam_betas: [0.9, .inf]}")), HasSubstr("rl.optim.adam_betas"));
  EXPECT_THAT(ErrorOf(WithSection("rl", "eps_clip: .nan")), HasSubstr("rl.eps_clip: must be finite"));
  EXPECT_THAT(ErrorOf(WithSection("data", "max_pixels: 9223372036854775807")),
              HasSubstr("data.max_pixels: must be in [784, 1.28451e+07]"));
  EXPECT_THAT(ErrorOf(WithSection("data", "max_pixels: -1")), HasSubstr("data.max_pixels"));
  EXPECT_THAT(ErrorOf(WithSection("data", "min_pixels: 9223372036854775807")), HasSubstr("data.min_pixels"));
  EXPECT_THAT(ErrorOf(WithSection("data", "synthetic_max_count: 9223372036854775807")),
              HasSubstr("data.synthetic_max_count: must be in [1, 9]"));
  EXPECT_THAT(ErrorOf(WithSection("rl", "top_k: -2")), HasSubstr("rl.top_k"));
  EXPECT_THAT(ErrorOf(WithSection("sft", "batch_size: 0")), HasSubstr("sft.batch_size"));
  EXPECT_THAT(ErrorOf(WithSection("sft", "epochs: -1")), HasSubstr("sft.epochs"));
}

TEST(config, EveryErrorIsReportedOnce) {
  // A bad value is reported by its own range check, not again by a rule that uses it.
  const std::string e = ErrorOf(WithTiny("num_heads: 0, num_kv_heads: 0"));
  EXPECT_THAT(e, HasSubstr("model.tiny.num_heads: must be in"));
  EXPECT_THAT(e, HasSubstr("model.tiny.num_kv_heads: must be in"));
  EXPECT_THAT(e, Not(HasSubstr("must divide")));
}

// `r1r submit --dry-run` and SubmitJob(dry_run) print DescribePlan, which reads model.path/config.json.
TEST(config, DryRunPlanSurvivesABadConfigJson) {
  const std::string dir = ::testing::TempDir() + "/bad_tie";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/config.json") << R"({"hidden_size": 64, "num_attention_heads": 4,
    "num_hidden_layers": 2, "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 1000,
    "tie_word_embeddings": "yes"})";
  auto spec = ParseJobSpec("name: p\nmodel: {init: path, path: " + dir + "}\ndata: {source: r1reward_jsonl, path: x}\n");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_FALSE(EstimateModelSize(*spec).known);
  EXPECT_THAT(DescribePlan(*spec), HasSubstr("tie_word_embeddings"));
}

}  // namespace
}  // namespace r1r::config
