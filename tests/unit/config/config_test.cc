#include <filesystem>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/config/flags.h"
#include "common/config/job_spec.h"
#include "common/config/plan.h"

namespace r1r::config {
namespace {

using ::testing::HasSubstr;

constexpr char kMinimal[] = R"(
name: t
model: {init: tiny}
data: {source: synthetic, synthetic_n: 10}
judge: {backend: rule}
)";

std::string ErrorOf(const std::string& yaml) {
  auto spec = ParseJobSpec(yaml);
  EXPECT_FALSE(spec.ok()) << yaml;
  return spec.ok() ? "" : std::string(spec.status().message());
}

TEST(config, MinimalSpecGetsPaperDefaults) {
  auto spec = ParseJobSpec(kMinimal);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->rl.eps_clip, 0.2);
  EXPECT_EQ(spec->rl.preclip_min, 1e-3);
  EXPECT_EQ(spec->rl.preclip_max, 1e3);
  EXPECT_EQ(spec->rl.adv_filter, "sigma3");
  EXPECT_EQ(spec->rl.loss_aggregation, "sequence_mean");
  EXPECT_EQ(spec->rl.format_weight, 0.5);
  EXPECT_EQ(spec->rl.consistency_weight, 0.5);
  EXPECT_EQ(spec->rl.kl_coef, 0.0);
  EXPECT_EQ(spec->rl.rollout_batch_size, 256);
  EXPECT_EQ(spec->rl.train_batch_size, 128);
  EXPECT_EQ(spec->data.max_pixels, 640 * 28 * 28);
  EXPECT_EQ(spec->data.image_placement, "after_text");  // R1-Reward's training layout
  EXPECT_EQ(spec->rl.off_policy_steps, 0);               // synchronous and on-policy unless asked
  EXPECT_EQ(spec->data.prompt_style, "r1reward");        // the paper's Table 1 prompt
  EXPECT_EQ(spec->data.sft_split, "rest");               // the paper's §4.3 split
  EXPECT_EQ(spec->data.rl_split, "hard");
}

TEST(config, OutOfRangeNamesFieldAndValue) {
  EXPECT_THAT(ErrorOf(std::string(kMinimal) + "rl: {eps_clip: 1.5}"), HasSubstr("rl.eps_clip: must be in (0, 1), got 1.5"));
  EXPECT_THAT(ErrorOf(std::string(kMinimal) + "sft: {optim: {lr: -1}}"), HasSubstr("sft.optim.lr"));
  EXPECT_THAT(ErrorOf(std::string(kMinimal) + "rl: {off_policy_steps: 2}"), HasSubstr("rl.off_policy_steps"));
  EXPECT_THAT(ErrorOf("name: t\nmodel: {init: tiny}\ndata: {source: synthetic, synthetic_n: 3, prompt_style: tiny}\n"),
              HasSubstr("data.prompt_style"));
  EXPECT_THAT(ErrorOf("name: t\nmodel: {init: tiny}\ndata: {source: synthetic, synthetic_n: 3, rl_split: rest}\n"),
              HasSubstr("data.rl_split"));
}

TEST(config, WrongTypeNamesField) {
  EXPECT_THAT(ErrorOf(std::string(kMinimal) + "rl: {rollout_batch_size: many}"),
              HasSubstr("rl.rollout_batch_size: must be an integer"));
}

TEST(config, UnknownFieldIsReportedNotIgnored) {
  EXPECT_THAT(ErrorOf(std::string(kMinimal) + "rl: {eps_clp: 0.2}"), HasSubstr("rl.eps_clp: unknown field"));
  EXPECT_THAT(ErrorOf(std::string(kMinimal) + "colour: red"), HasSubstr("colour: unknown field"));
}

TEST(config, MissingRequiredAndCrossFieldRules) {
  EXPECT_THAT(ErrorOf("model: {init: tiny}\ndata: {source: synthetic, synthetic_n: 3}\n"), HasSubstr("name: is required"));
  EXPECT_THAT(ErrorOf("name: x\nmodel: {init: path}\ndata: {source: synthetic, synthetic_n: 3}\n"),
              HasSubstr("model.path: is required"));
  EXPECT_THAT(ErrorOf(std::string(kMinimal) + "rl: {rollout_batch_size: 100, train_batch_size: 30}"),
              HasSubstr("rl.train_batch_size: must divide"));
  EXPECT_THAT(ErrorOf(std::string(kMinimal) + "rl: {algorithm: grpo}"), HasSubstr("rl.samples_per_prompt"));
  EXPECT_THAT(ErrorOf("name: t\nmodel: {init: tiny}\ndata: {source: synthetic, synthetic_n: 3, image_placement: sideways}\n"),
              HasSubstr("data.image_placement: must be one of after_text|before_text, got 'sideways'"));
  EXPECT_THAT(ErrorOf("name: t\nmodel: {init: tiny}\n"
                      "data: {source: synthetic, synthetic_n: 3, synthetic_questions: [all, size]}\n"),
              HasSubstr("data.synthetic_questions: each must be colour_shape, colour or all, got 'size'"));
  EXPECT_THAT(ErrorOf("name: t\nmodel: {init: tiny}\n"
                      "data: {source: synthetic, synthetic_n: 3, synthetic_trace: essay}\n"),
              HasSubstr("data.synthetic_trace: must be one of count|tally|list, got 'essay'"));
  EXPECT_THAT(ErrorOf("name: t\nmodel: {init: tiny}\n"
                      "data: {source: synthetic, synthetic_n: 3, synthetic_grid: 2, synthetic_max_count: 3}\n"),
              HasSubstr("data.synthetic_max_count: plus synthetic_max_distractors must fit in synthetic_grid^2 cells"));
  // Counting every shape draws no distractors, so max_distractors does not need room then.
  auto all_shapes = ParseJobSpec("name: t\nmodel: {init: tiny}\n"
                                 "data: {source: synthetic, synthetic_n: 3, synthetic_grid: 2, synthetic_max_count: 4,"
                                 " synthetic_questions: [all]}\n");
  EXPECT_TRUE(all_shapes.ok()) << all_shapes.status();
  EXPECT_THAT(ErrorOf("name: t\nmodel: {init: tiny}\ndata: {source: synthetic, synthetic_n: 3, synthetic_grid: 5}\n"),
              HasSubstr("data.synthetic_grid"));
  EXPECT_THAT(ErrorOf("name: t\nmodel: {init: tiny, tiny: {rope_theta: 0}}\ndata: {source: synthetic, synthetic_n: 3}\n"),
              HasSubstr("model.tiny.rope_theta"));
  EXPECT_THAT(ErrorOf(std::string(kMinimal) + "rl: {adv_filter: sigma4}"),
              HasSubstr("rl.adv_filter: must be one of sigma3|code_mean3|none, got 'sigma4'"));
  EXPECT_THAT(ErrorOf(std::string(kMinimal) + "rl: {loss_aggregation: sum}"),
              HasSubstr("rl.loss_aggregation: must be one of sequence_mean|token_mean, got 'sum'"));
}

TEST(config, SyntaxErrorGivesLine) {
  EXPECT_THAT(ErrorOf("name: x\nmodel: [unclosed\n"), HasSubstr("YAML syntax error at line"));
  EXPECT_THAT(ErrorOf("- a\n- b\n"), HasSubstr("must be a YAML mapping"));
}

TEST(config, ShippedConfigsValidate) {
  for (const char* name : {"demo.yaml", "paper_7b.yaml"}) {
    std::ifstream in(std::string(R1R_SOURCE_DIR) + "/configs/" + name);
    ASSERT_TRUE(in) << "configs/" << name << " is missing";
    std::stringstream ss;
    ss << in.rdbuf();
    auto spec = ParseJobSpec(ss.str());
    EXPECT_TRUE(spec.ok()) << name << ": " << spec.status();
  }
}

TEST(config, PlanEstimatesSevenBillionFromConfigJson) {
  // Qwen2.5-VL-7B-Instruct's config.json numbers (text 28 layers x 3584, vision 32 x 1280).
  const std::string dir = ::testing::TempDir() + "/qwen7b";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/config.json") << R"({"hidden_size": 3584, "num_attention_heads": 28,
    "num_hidden_layers": 28, "num_key_value_heads": 4, "intermediate_size": 18944, "vocab_size": 152064,
    "tie_word_embeddings": false,
    "vision_config": {"hidden_size": 1280, "depth": 32, "intermediate_size": 3420, "out_hidden_size": 3584}})";
  auto spec = ParseJobSpec("name: p\nmodel: {init: path, path: " + dir + "}\ndata: {source: r1reward_jsonl, path: x}\n");
  ASSERT_TRUE(spec.ok()) << spec.status();
  const ModelSize m = EstimateModelSize(*spec);
  ASSERT_TRUE(m.known);
  EXPECT_NEAR(m.parameters / 1e9, 8.29, 0.1);  // the published checkpoint has 8.29e9 parameters
  EXPECT_THAT(DescribePlan(*spec), HasSubstr("memory per role: learner"));
  EXPECT_THAT(DescribePlan(*spec), HasSubstr("SFT on rest / RL on hard items"));  // the paper's §4.3 split
}

TEST(config, FlagsParseBothStylesAndRejectUnknown) {
  Flags f;
  f.Value("listen", "0.0.0.0:1", "addr").Value("metrics-listen", "", "m").Switch("json", "j");
  const char* argv[] = {"prog", "--listen", "127.0.0.1:5", "--metrics-listen=:9", "--json", "pos"};
  ASSERT_TRUE(f.Parse(6, argv).ok());
  EXPECT_EQ(f.Get("listen"), "127.0.0.1:5");
  EXPECT_EQ(f.Get("metrics-listen"), ":9");
  EXPECT_TRUE(f.Has("json"));
  EXPECT_EQ(f.positionals(), std::vector<std::string>{"pos"});
  Flags g;
  g.Value("listen", "", "addr");
  const char* bad[] = {"prog", "--lisen", "x"};
  auto s = g.Parse(3, bad);
  EXPECT_THAT(std::string(s.message()), HasSubstr("unknown flag --lisen"));
  const char* missing[] = {"prog", "--listen"};
  EXPECT_THAT(std::string(g.Parse(2, missing).message()), HasSubstr("--listen needs a value"));
}

TEST(config, FlagsIntInRangeNamesTheFlagAndTheRange) {
  Flags f;
  f.Value("max-batch", "8", "rows").Value("votes", "0", "k").Value("retries", "x", "n");
  const char* argv[] = {"prog"};
  ASSERT_TRUE(f.Parse(1, argv).ok());
  auto ok = f.GetIntInRange("max-batch", 1, 1024);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 8);
  auto low = f.GetIntInRange("votes", 1, 64);
  EXPECT_EQ(low.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(low.status().message()), HasSubstr("--votes must be 1..64, got 0"));
  EXPECT_THAT(std::string(f.GetIntInRange("retries", 0, 3).status().message()), HasSubstr("not an integer"));
}

}  // namespace
}  // namespace r1r::config
