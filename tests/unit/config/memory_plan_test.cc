// The learner's memory plan: the paper's config fits 8 x 80 GB; a spec that cannot fit is refused
// naming its largest terms and the knob; the JSON carries memory.learner.*.
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/config/job_spec.h"
#include "common/config/memory_plan.h"
#include "common/config/plan.h"

namespace r1r::config {
namespace {

using ::testing::HasSubstr;

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

JobSpec PaperSpec() {
  auto spec = ParseJobSpec(Read(std::string(R1R_SOURCE_DIR) + "/configs/paper_7b.yaml"));
  EXPECT_TRUE(spec.ok()) << spec.status();
  return *spec;
}

double Term(const LearnerMemory& plan, const std::string& name) {
  for (const auto& [n, b] : plan.terms)
    if (n == name) return b;
  return -1;
}

constexpr double kGiB = 1024.0 * 1024 * 1024;

TEST(config, PaperConfigFitsOnEightGpusOfEightyGigabytes) {
  const JobSpec spec = PaperSpec();
  EXPECT_EQ(spec.learner.precision, "bf16_mixed");
  EXPECT_EQ(spec.learner.world_size, 8);
  EXPECT_TRUE(spec.model.gradient_checkpointing);
  const LearnerMemory plan = PlanLearner(spec);  // /models/... is not here: the published 7B config
  ASSERT_FALSE(plan.terms.empty());
  EXPECT_TRUE(plan.checked);
  EXPECT_TRUE(plan.fits) << DescribeLearnerMemory(plan);
  EXPECT_EQ(plan.gpu_memory_bytes, 80 * kGiB);
  // 8.29e9 parameters: bf16 weights 15.4 GiB on every rank; master + moments 12 B/param over 8 ranks.
  EXPECT_NEAR(Term(plan, "weights") / kGiB, 8.29e9 * 2 / kGiB, 0.3);
  EXPECT_NEAR(Term(plan, "optimizer") / kGiB, 8.29e9 * 12 / 8 / kGiB, 0.3);
  EXPECT_TRUE(CheckLearnerFits(spec).ok());
  EXPECT_THAT(DescribePlan(spec), HasSubstr("verdict: fits"));
  // The same on 4 GPUs still fits; on 2 it does not.
  JobSpec four = spec;
  four.learner.world_size = 4;
  EXPECT_TRUE(PlanLearner(four).fits) << DescribeLearnerMemory(PlanLearner(four));
  JobSpec two = spec;
  two.learner.world_size = 2;
  EXPECT_FALSE(PlanLearner(two).fits);
}

TEST(config, PlanRefusesALearnerThatCannotFitAndNamesTheKnob) {
  JobSpec spec = PaperSpec();
  // The old setting: one rank, replicated fp32 state, no checkpointing.
  spec.learner.world_size = 1;
  spec.learner.zero_stage = 0;
  spec.model.gradient_checkpointing = false;
  const LearnerMemory plan = PlanLearner(spec);
  EXPECT_FALSE(plan.fits);
  EXPECT_GT(plan.per_gpu_bytes, 100 * kGiB);
  const absl::Status s = CheckLearnerFits(spec);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(s.message(), HasSubstr("largest terms: "));
  EXPECT_THAT(s.message(), HasSubstr("world_size"));  // one 80 GB GPU cannot hold 7B's state: more ranks
  EXPECT_THAT(DescribePlan(spec), HasSubstr("DOES NOT FIT"));
  // Checkpointing alone is the knob when activations are what does not fit.
  JobSpec acts = PaperSpec();
  acts.model.gradient_checkpointing = false;
  acts.learner.micro_batch = 8;
  const LearnerMemory heavy = PlanLearner(acts);
  ASSERT_FALSE(heavy.fits) << DescribeLearnerMemory(heavy);
  EXPECT_EQ(heavy.advice, "set model.gradient_checkpointing: true");
  // A CPU learner is planned but not refused.
  JobSpec cpu = spec;
  cpu.model.device = "cpu";
  EXPECT_TRUE(CheckLearnerFits(cpu).ok());
}

TEST(config, PlanJsonCarriesTheLearnerMemory) {
  const JobSpec spec = PaperSpec();
  const auto j = nlohmann::json::parse(PlanJson(spec, DescribePlan(spec)));
  const auto& l = j.at("memory").at("learner");
  EXPECT_GT(l.at("per_gpu_bytes").get<double>(), 10 * kGiB);
  EXPECT_EQ(l.at("gpu_memory_bytes").get<double>(), 80 * kGiB);
  EXPECT_TRUE(l.at("fits").get<bool>());
  double sum = 0;
  for (const auto& [name, bytes] : l.at("terms").items()) sum += bytes.get<double>();
  EXPECT_NEAR(sum, l.at("per_gpu_bytes").get<double>(), 16);
  for (const char* term : {"weights", "gradients", "optimizer", "activations", "workspace"}) {
    EXPECT_TRUE(l.at("terms").contains(term)) << term;
  }
}

TEST(config, CheckpointingAndShardingShrinkTheirTerms) {
  JobSpec spec = PaperSpec();
  const ModelShape m = ReadModelShape(spec);  // the published 7B config
  ASSERT_TRUE(m.known);
  EXPECT_NEAR((m.text_params + m.vision_params) / 1e9, 8.29, 0.05);
  LearnerPlanOptions o = LearnerPlanOptionsFromSpec(spec);
  o.freeze_vision = true;  // text activations only
  o.checkpointing = false;
  const double plain = Term(PlanLearnerMemory(m, o, 80 * kGiB), "activations");
  o.checkpointing = true;
  const double ckpt = Term(PlanLearnerMemory(m, o, 80 * kGiB), "activations");
  EXPECT_LT(ckpt, plain / 5);
  // ~7 MB per text token without checkpointing (the estimate: 6.9 MB for 7B).
  EXPECT_NEAR(plain / (o.sequences * (o.text_tokens + o.image_tokens)) / 1e6, 7.5, 1.5);
  o.zero_stage = 0;
  const double replicated = Term(PlanLearnerMemory(m, o, 80 * kGiB), "optimizer");
  o.zero_stage = 1;
  EXPECT_NEAR(Term(PlanLearnerMemory(m, o, 80 * kGiB), "optimizer"), replicated / 8, 1);
}

}  // namespace
}  // namespace r1r::config
