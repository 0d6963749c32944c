// rl.* names in a job spec become the rl::RlAlgorithmConfig the trainer runs; unknown names are errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "services/learner/spec_options.h"

namespace r1r::learner {
namespace {

using ::testing::HasSubstr;

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

}  // namespace
}  // namespace r1r::learner
