// An RL step on rollouts generated with the generation features (continuous batching, one prefill per
// prompt for its samples, decode steps in the fixed shapes CUDA graphs replay) has the same metrics as
// one on rollouts of the static batch with a prefill per sample: same seeds, CPU.
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/model/generate.h"
#include "common/train/trainer.h"
#include "tests/unit/train/tiny_world.h"

namespace r1r::train {
namespace {

std::map<std::string, double> RlStepOnRollouts(const model::GenerateOptions& generation,
                                               std::vector<std::vector<int64_t>>* responses) {
  auto policy = testing::LoadPolicy();
  auto sft = testing::MakeSftItems(*policy, 0, 3);
  // samples_per_prompt = 2: each prompt twice (separate copies, as the actor encodes them).
  std::vector<EncodedPrompt> prompts;
  std::vector<model::SamplingParams> sampling;
  for (size_t i = 0; i < sft.size(); ++i) {
    for (int k = 0; k < 2; ++k) {
      prompts.push_back(sft[i].prompt);
      model::SamplingParams s;
      s.temperature = 1.0;
      s.max_new_tokens = 4 + static_cast<int64_t>((3 * i + 5 * k) % 9);  // ragged: rows leave and join
      s.seed = 1000 + 10 * i + k;
      sampling.push_back(s);
    }
  }
  std::vector<const EncodedPrompt*> ptrs;
  for (const auto& p : prompts) ptrs.push_back(&p);
  auto out = policy->Generate(ptrs, sampling, generation);
  EXPECT_TRUE(out.ok()) << out.status();
  if (!out.ok()) return {};
  std::vector<RlItem> items;
  for (size_t i = 0; i < out->size(); ++i) {
    RlItem item;
    item.prompt = prompts[i];
    item.response_ids = (*out)[i].token_ids;
    item.behaviour_logprobs = (*out)[i].logprobs;
    item.reward = (i % 3 == 0) ? 1.0 : (i % 3 == 1 ? 0.0 : 0.5);
    responses->push_back(item.response_ids);
    items.push_back(std::move(item));
  }
  OptimizerOptions o;
  o.lr = 5e-3;
  o.warmup_ratio = 0;
  o.min_lr_ratio = 1.0;
  o.total_steps = 2;
  o.micro_batch = 2;
  Trainer trainer(policy.get(), nullptr, o);
  RlStepOptions rl;
  rl.algorithm = rl::ConfigFor(rl::Algorithm::kStableReinforce, 2);
  rl.train_batch_size = 3;
  auto step = trainer.RlStep(items, rl);
  EXPECT_TRUE(step.ok()) << step.status();
  if (!step.ok()) return {};
  std::map<std::string, double> metrics = step->metrics;
  metrics["loss"] = step->loss;
  metrics["grad_norm"] = step->grad_norm;
  return metrics;
}

TEST(train, RlStepMetricsDoNotDependOnTheGenerationFeatures) {
  model::GenerateOptions features;  // continuous batching (2 rows at a time), shared prefill
  features.max_batch_rows = 2;
  model::GenerateOptions windows = features;  // and decode steps in fixed shapes (CUDA graphs' path)
  windows.cuda_graphs = true;
  windows.cuda_graph_span_step = 4;
  model::GenerateOptions plain;
  plain.continuous_batching = false;
  plain.share_prefill = false;
  std::vector<std::vector<int64_t>> b;
  const auto without = RlStepOnRollouts(plain, &b);
  for (const model::GenerateOptions& o : {features, windows}) {
    SCOPED_TRACE(o.cuda_graphs ? "with decode windows" : "without decode windows");
    std::vector<std::vector<int64_t>> a;
    const auto with = RlStepOnRollouts(o, &a);
    EXPECT_EQ(a, b);
    ASSERT_FALSE(with.empty());
    ASSERT_EQ(with.size(), without.size());
    int compared = 0;
    for (const auto& [name, value] : with) {
      ASSERT_EQ(without.count(name), 1u) << name;
      if (name.size() > 8 && name.substr(name.size() - 8) == "_seconds") continue;  // wall times
      ++compared;
      EXPECT_NEAR(value, without.at(name), 1e-5 * std::max(1.0, std::abs(value))) << name;
    }
    EXPECT_GT(compared, 5);
  }
}

}  // namespace
}  // namespace r1r::train
