// rl.* names in a job spec become the rl::RlAlgorithmConfig the trainer runs; unknown names are errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "services/learner/spec_options.h"

namespace r1r::learner {
namespace {

using ::testing::HasSubstr;

const std::string kSpec = "name: x\nmodel: {init: tiny}\ndata: {source: synthetic, synthetic_n: 4}\n";

TEST(learner, RlSpecNamesMapToTheTrainersAlgorithmConfig) {
  config::RlSpec rl;  // the paper's defaults
  auto o = RlOptionsFromSpec(rl);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->algorithm.loss.aggregation, rl::LossAggregation::kSequenceMeanOfTokenMeans);
  EXPECT_EQ(o->algorithm.advantage.filter.window, rl::FilterWindow::kPaperSymmetric);
  EXPECT_TRUE(o->algorithm.advantage.filter.enabled);
  EXPECT_DOUBLE_EQ(o->algorithm.loss.pre_clip.ratio_min, 1e-3);
  EXPECT_DOUBLE_EQ(o->algorithm.loss.pre_clip.ratio_max, 1e3);

  rl.loss_aggregation = "token_mean";
  rl.adv_filter = "none";
  rl.kl_estimator = "k3";
  rl.eps_clip_high = 0.28;
  o = RlOptionsFromSpec(rl);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->algorithm.loss.aggregation, rl::LossAggregation::kGlobalTokenMean);
  EXPECT_FALSE(o->algorithm.advantage.filter.enabled);
  EXPECT_EQ(o->algorithm.advantage.kl_estimator, rl::KlEstimator::kK3);
  EXPECT_DOUBLE_EQ(o->algorithm.loss.clip_eps_low, 0.2);
  EXPECT_DOUBLE_EQ(o->algorithm.loss.clip_eps_high, 0.28);
}

TEST(learner, UnknownRlSpecNamesAreErrors) {
  config::RlSpec rl;
  rl.loss_aggregation = "sum";
  EXPECT_THAT(std::string(RlOptionsFromSpec(rl).status().message()), HasSubstr("rl.loss_aggregation"));
  rl = config::RlSpec();
  rl.adv_filter = "sigma4";
  EXPECT_THAT(std::string(RlOptionsFromSpec(rl).status().message()), HasSubstr("rl.adv_filter"));
  rl = config::RlSpec();
  rl.algorithm = "ppo2";
  EXPECT_THAT(std::string(RlOptionsFromSpec(rl).status().message()), HasSubstr("rl.algorithm"));
}

TEST(learner, SpecWorldSizeMustMatchTheRanksWhenGiven) {
  auto spec = config::ParseJobSpec(kSpec + "learner: {world_size: 8}\n");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(CheckLearnerWorldSize(*spec, 8).ok());
  absl::Status s = CheckLearnerWorldSize(*spec, 2);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("learner.world_size is 8"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("--dist-world-size 2"));
  // A spec without learner.world_size (the demo's) runs on any number of ranks.
  auto plain = config::ParseJobSpec(kSpec);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_TRUE(CheckLearnerWorldSize(*plain, 2).ok());
}

// A boolean learner knob: its default reaches the trainer, a spec that flips it reaches the trainer
// for SFT and RL, and a value that is not a bool is an error naming the field.
void ExpectBoolKnobReachesTheTrainer(const std::string& field, bool by_default, const std::string& flipping,
                                     const std::string& not_a_bool, bool train::OptimizerOptions::*knob) {
  SCOPED_TRACE(field);
  auto plain = config::ParseJobSpec(kSpec);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(LearnerOptimizerOptions(*plain, plain->sft.optim, 1, 2, 0).*knob, by_default);
  auto flipped = config::ParseJobSpec(kSpec + flipping);
  ASSERT_TRUE(flipped.ok()) << flipped.status();
  EXPECT_EQ(LearnerOptimizerOptions(*flipped, flipped->sft.optim, 1, 2, 0).*knob, !by_default);
  EXPECT_EQ(LearnerOptimizerOptions(*flipped, flipped->rl.optim, 1, 2, 0).*knob, !by_default);
  auto bad = config::ParseJobSpec(kSpec + not_a_bool);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr(field));
}

TEST(learner, PackSequencesReachesTheTrainerAndIsValidated) {
  ExpectBoolKnobReachesTheTrainer("pack_sequences", /*by_default=*/false,
                                  "learner: {pack_sequences: true, micro_batch_tokens: 4096}\n",
                                  "learner: {pack_sequences: sometimes}\n", &train::OptimizerOptions::pack_sequences);
}

TEST(learner, OverlapGradReduceReachesTheTrainerAndIsValidated) {
  ExpectBoolKnobReachesTheTrainer("overlap_grad_reduce", /*by_default=*/true,
                                  "learner: {zero_stage: 2, overlap_grad_reduce: false}\n",
                                  "learner: {overlap_grad_reduce: 2}\n", &train::OptimizerOptions::overlap_grad_reduce);
}

}  // namespace
}  // namespace r1r::learner
