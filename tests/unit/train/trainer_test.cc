// SFT learns, log-probs do not depend on padding, StableReinforce steps move the weights and a bad
// rollout never corrupts them, and the LR schedule has the documented shape.
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include <gtest/gtest.h>

#include "common/dist/process_group.h"
#include "common/files/remove_tree.h"
#include "common/model/weights.h"
#include "common/train/schedule.h"
#include "common/train/sequence_batch.h"
#include "common/train/trainer.h"
#include "tests/unit/dist/gloo_ranks.h"
#include "tests/unit/train/tiny_world.h"

namespace r1r::train {
namespace {

using testing::LoadPolicy;
using testing::MakeSftItems;

std::vector<at::Tensor> Snapshot(Policy& p) {
  std::vector<at::Tensor> out;
  for (const auto& t : p.model().parameters()) out.push_back(t.detach().clone());
  return out;
}

double MaxAbsChange(Policy& p, const std::vector<at::Tensor>& before) {
  double m = 0;
  auto params = p.model().parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    m = std::max(m, (params[i].detach() - before[i]).abs().max().item<double>());
  }
  return m;
}

bool AllFinite(Policy& p) {
  for (const auto& t : p.model().parameters()) {
    if (!torch::isfinite(t).all().item<bool>()) return false;
  }
  return true;
}

OptimizerOptions FastOptimizer(int64_t total_steps) {
  OptimizerOptions o;
  o.lr = 5e-3;
  o.warmup_ratio = 0;
  o.min_lr_ratio = 1.0;
  o.total_steps = total_steps;
  o.micro_batch = 2;  // exercises accumulation over micro-batches
  return o;
}

// RL items whose responses are the teacher traces of the SFT items, with the given rewards.
std::vector<RlItem> MakeRlItems(Policy& policy, const std::vector<double>& rewards) {
  std::vector<RlItem> out;
  auto sft = MakeSftItems(policy, 0, static_cast<int>(rewards.size()));
  for (size_t i = 0; i < rewards.size(); ++i) {
    RlItem item;
    item.prompt = sft[i].prompt;
    // Short responses keep the step fast; different lengths exercise the masks.
    const size_t len = std::min<size_t>(sft[i].target_ids.size(), 8 + 3 * i);
    item.response_ids.assign(sft[i].target_ids.begin(), sft[i].target_ids.begin() + static_cast<long>(len));
    item.reward = rewards[i];
    out.push_back(std::move(item));
  }
  return out;
}

RlStepOptions StableReinforce(int64_t train_batch) {
  RlStepOptions o;
  o.algorithm = rl::ConfigFor(rl::Algorithm::kStableReinforce);
  o.train_batch_size = train_batch;
  return o;
}

TEST(train, SftStepsReduceLossOnAFixedBatch) {
  auto policy = LoadPolicy();
  auto items = MakeSftItems(*policy, 0, 3);
  OptimizerOptions o = FastOptimizer(10);
  o.lr = 1e-2;  // a 32-wide model from scratch: a large LR memorises one batch within 10 steps
  Trainer trainer(policy.get(), nullptr, o);
  std::map<std::string, at::Tensor> vision_before;
  for (const auto& [name, t] : model::ExportWeights(policy->model())) {
    if (name.rfind("visual.", 0) == 0) vision_before[name] = t.clone();
  }
  ASSERT_FALSE(vision_before.empty());
  double first = 0, last = 0;
  for (int step = 0; step < 10; ++step) {
    auto r = trainer.SftStep(items);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_TRUE(std::isfinite(r->loss));
    EXPECT_EQ(r->optimizer_steps, 1);
    if (step == 0) first = r->loss;
    last = r->loss;
  }
  EXPECT_GT(first, 3.0);  // near ln(400) at random init
  EXPECT_LT(last, 0.7 * first) << "first " << first << " last " << last;
  EXPECT_EQ(trainer.steps_done(), 10);
  // The image reaches the loss: the vision tower trains too.
  int changed = 0;
  for (const auto& [name, t] : model::ExportWeights(policy->model())) {
    if (vision_before.count(name)) changed += torch::equal(t, vision_before.at(name)) ? 0 : 1;
  }
  EXPECT_GT(changed, static_cast<int>(vision_before.size()) / 2) << changed << " of " << vision_before.size();
}

// r1r_prompt.json says how prompts were laid out in training; a broken one is an error, never a throw.
TEST(train, PromptLayoutFileIsValidatedFieldByField) {
  const std::string dir = ::testing::TempDir() + "/prompt_layout_model";  // a copy: the world's dir is shared
  EXPECT_TRUE(r1r::files::RemoveTree(dir).ok()) << dir;
  std::filesystem::copy(LoadPolicy()->model_dir(), dir, std::filesystem::copy_options::recursive);
  const std::string path = dir + "/r1r_prompt.json";
  for (const char* bad : {R"({"image_placement": 3})", R"({"image_placement": "after_text", "prompt_style": 7})",
                          R"({"image_placement": "after_text", "prompt_style": "short"})", "[1, 2]", "{not json"}) {
    std::ofstream(path, std::ios::trunc) << bad;
    auto loaded = Policy::Load(dir, model::ModelOptions{}, /*with_weights=*/false);
    EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  std::ofstream(path, std::ios::trunc) << R"({"image_placement": "after_text", "prompt_style": 7})";
  const std::string message(Policy::Load(dir, model::ModelOptions{}, false).status().message());
  EXPECT_NE(message.find("prompt_style must be a string"), std::string::npos) << message;
  std::ofstream(path, std::ios::trunc) << R"({"image_placement": "after_text", "prompt_style": "compact"})";
  EXPECT_TRUE(Policy::Load(dir, model::ModelOptions{}, /*with_weights=*/false).ok());
  std::filesystem::remove(path);  // absent: the defaults
  EXPECT_TRUE(Policy::Load(dir, model::ModelOptions{}, /*with_weights=*/false).ok());
}

TEST(train, FrozenVisionKeepsItsWeightsWhileTheLanguageModelTrains) {
  auto policy = LoadPolicy();
  policy->SetVisionTrainable(false);
  Trainer trainer(policy.get(), nullptr, FastOptimizer(2));
  std::map<std::string, at::Tensor> before;
  for (const auto& p : policy->model().named_parameters()) before[p.key()] = p.value().detach().clone();
  ASSERT_TRUE(trainer.SftStep(MakeSftItems(*policy, 0, 4)).ok());
  int vision = 0, text_moved = 0;
  for (const auto& p : policy->model().named_parameters()) {
    const bool same = torch::equal(p.value(), before.at(p.key()));
    if (p.key().rfind("visual.", 0) == 0) {
      ++vision;
      EXPECT_TRUE(same) << p.key();
    } else {
      text_moved += same ? 0 : 1;
    }
  }
  EXPECT_GT(vision, 5);
  EXPECT_GT(text_moved, 5);
  policy->SetVisionTrainable(true);
  ASSERT_TRUE(trainer.SftStep(MakeSftItems(*policy, 0, 4)).ok());
  EXPECT_FALSE(torch::equal(policy->model().named_parameters()["visual.merger.mlp.0.weight"],
                            before.at("visual.merger.mlp.0.weight")));
}

// The image path can be learned at all: the same text with a solid red or a solid blue image, and a
// target that names one answer per colour, so only the image tells them apart. The loss sits at the
// coin's for the first ~50 steps (the language model learns everything the text predicts first), then
// falls once attention to the image tokens forms: a tiny model from scratch needs that many steps.
TEST(train, SftLearnsToReadASolidColourFromTheImage) {
  auto policy = LoadPolicy();
  std::vector<SftItem> items;
  for (int k = 0; k < 8; ++k) {
    const bool red = k % 2 == 0;
    vision::RgbImage image{56, 56, {}};
    for (int px = 0; px < 56 * 56; ++px) {
      image.pixels.insert(image.pixels.end(), {uint8_t(red ? 220 : 40), uint8_t(40), uint8_t(red ? 40 : 220)});
    }
    auto prompt = policy->encoder().Encode({"How many shapes?", "There is 1 shape.", "There are 2 shapes.", ""}, image);
    ASSERT_TRUE(prompt.ok()) << prompt.status();
    auto target = policy->encoder().EncodeText(red ? "<answer>1</answer>" : "<answer>2</answer>");
    ASSERT_TRUE(target.ok());
    items.push_back({*prompt, *target});
  }
  OptimizerOptions o = FastOptimizer(160);
  o.lr = 3e-3;
  Trainer trainer(policy.get(), nullptr, o);
  for (int step = 0; step < 160; ++step) ASSERT_TRUE(trainer.SftStep(items).ok());
  torch::NoGradGuard no_grad;
  auto answer_logprob = [&](const SftItem& image_of) {
    auto batch = BuildSequenceBatch({&image_of.prompt}, {items[0].target_ids}, policy->pad_id());
    return policy->ResponseLogProbs(*batch)->sum().item<double>();
  };
  // The red answer: likely under the red image, unlikely under the blue one.
  EXPECT_GT(answer_logprob(items[0]), -0.1);
  EXPECT_LT(answer_logprob(items[1]), -2.0);
}

TEST(train, MicroBatchingByCountOrTokenBudgetDoesNotChangeTheStep) {
  auto whole = LoadPolicy();
  auto split = LoadPolicy();
  auto items = MakeSftItems(*whole, 0, 4);
  OptimizerOptions a = FastOptimizer(1);
  a.micro_batch = 8;
  OptimizerOptions b = a;
  b.micro_batch = 8;
  b.micro_batch_tokens = 1;  // every sequence alone
  Trainer ta(whole.get(), nullptr, a), tb(split.get(), nullptr, b);
  auto ra = ta.SftStep(items);
  auto rb = tb.SftStep(items);
  ASSERT_TRUE(ra.ok() && rb.ok());
  EXPECT_NEAR(ra->loss, rb->loss, 1e-5);
  // The accumulated gradient has the same norm. (Weights are not compared: Adam's first step is
  // about lr * sign(g), which flips for the near-zero gradients of unused embedding rows.)
  EXPECT_NEAR(ra->grad_norm, rb->grad_norm, 1e-4 * ra->grad_norm);
}

TEST(train, ResponseLogProbsDoNotDependOnBatchPadding) {
  auto policy = LoadPolicy();
  auto items = MakeSftItems(*policy, 0, 3);
  items[1].target_ids.resize(5);  // different response lengths
  items[2].prompt.ids.erase(items[2].prompt.ids.begin() + 1, items[2].prompt.ids.begin() + 4);  // shorter prompt
  torch::NoGradGuard no_grad;
  policy->model().eval();
  std::vector<const EncodedPrompt*> prompts;
  std::vector<std::vector<int64_t>> responses;
  for (const auto& it : items) {
    prompts.push_back(&it.prompt);
    responses.push_back(it.target_ids);
  }
  auto batch = BuildSequenceBatch(prompts, responses, policy->pad_id());
  ASSERT_TRUE(batch.ok()) << batch.status();
  auto together = policy->ResponseLogProbs(*batch);
  ASSERT_TRUE(together.ok()) << together.status();
  for (size_t i = 0; i < items.size(); ++i) {
    auto single_batch = BuildSequenceBatch({prompts[i]}, {responses[i]}, policy->pad_id());
    ASSERT_TRUE(single_batch.ok());
    auto alone = policy->ResponseLogProbs(*single_batch);
    ASSERT_TRUE(alone.ok()) << alone.status();
    const int64_t len = static_cast<int64_t>(responses[i].size());
    auto a = (*together)[static_cast<int64_t>(i)].narrow(0, 0, len);
    auto b = (*alone)[0].narrow(0, 0, len);
    EXPECT_TRUE(torch::allclose(a, b, /*rtol=*/1e-4, /*atol=*/1e-4))
        << "row " << i << " max diff " << (a - b).abs().max().item<double>();
    EXPECT_LT(a.max().item<double>(), 0.0);  // log-probs of a 400-token vocabulary
  }
}

TEST(train, RlStepWithMixedRewardsMovesTheWeights) {
  auto policy = LoadPolicy();
  auto items = MakeRlItems(*policy, {1.5, 0.0, 1.0, -0.5, 0.5, 1.5});
  Trainer trainer(policy.get(), nullptr, FastOptimizer(4));
  const auto before = Snapshot(*policy);
  auto r = trainer.RlStep(items, StableReinforce(/*train_batch=*/3));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->optimizer_steps, 2);  // a rollout of 6 in minibatches of 3
  EXPECT_EQ(r->skipped_steps, 0);
  EXPECT_TRUE(std::isfinite(r->loss));
  EXPECT_GT(r->grad_norm, 0);
  EXPECT_GT(MaxAbsChange(*policy, before), 1e-5);
  const double filtered = r->metrics.at("adv_filtered_fraction");
  EXPECT_GE(filtered, 0.0);
  EXPECT_LE(filtered, 1.0);
  EXPECT_NEAR(r->metrics.at("reward_mean"), 4.0 / 6.0, 1e-6);
  // The first minibatch runs at ratio 1: nothing clipped there; the fraction is a share either way.
  EXPECT_GE(r->metrics.at("clip_fraction"), 0.0);
  EXPECT_LE(r->metrics.at("clip_fraction"), 1.0);
  EXPECT_TRUE(AllFinite(*policy));
}

double SequenceLogProb(Policy& policy, const RlItem& item) {
  torch::NoGradGuard no_grad;
  auto batch = BuildSequenceBatch({&item.prompt}, {item.response_ids}, policy.pad_id());
  auto lp = policy.ResponseLogProbs(*batch);
  return lp->sum().item<double>();
}

TEST(train, RlStepsMakeTheRewardedResponseMoreLikely) {
  auto policy = LoadPolicy();
  // One prompt, two responses of the same length: the first rewarded, the second not.
  auto items = MakeRlItems(*policy, {1.0, 0.0});
  items[1].prompt = items[0].prompt;
  items[1].response_ids.assign(items[0].response_ids.rbegin(), items[0].response_ids.rend());
  const double gap_before = SequenceLogProb(*policy, items[0]) - SequenceLogProb(*policy, items[1]);
  OptimizerOptions o = FastOptimizer(5);
  o.lr = 1e-3;
  Trainer trainer(policy.get(), nullptr, o);
  for (int step = 0; step < 5; ++step) {
    auto r = trainer.RlStep(items, StableReinforce(2));
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->optimizer_steps, 1);
  }
  const double gap_after = SequenceLogProb(*policy, items[0]) - SequenceLogProb(*policy, items[1]);
  EXPECT_GT(gap_after, gap_before + 1.0) << "before " << gap_before << " after " << gap_after;
}

TEST(train, RlStepWithKlPenaltyUsesTheFrozenReference) {
  auto policy = LoadPolicy();
  auto reference = LoadPolicy();
  auto items = MakeRlItems(*policy, {1.0, 0.0, 0.5, 1.5});
  RlStepOptions options = StableReinforce(2);
  options.algorithm.advantage.kl_coef = 0.1;
  Trainer no_reference(policy.get(), nullptr, FastOptimizer(4));
  EXPECT_EQ(no_reference.RlStep(items, options).status().code(), absl::StatusCode::kFailedPrecondition);
  Trainer trainer(policy.get(), reference.get(), FastOptimizer(4));
  auto first = trainer.RlStep(items, options);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_NEAR(first->metrics.at("kl"), 0.0, 1e-6);  // the policy still equals its reference
  auto second = trainer.RlStep(items, options);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_GT(std::abs(second->metrics.at("kl")), 1e-6);  // now it has moved away
  EXPECT_TRUE(std::isfinite(second->loss));
  // The reference never trains.
  auto fresh = LoadPolicy();
  auto pr = reference->model().parameters();
  auto pf = fresh->model().parameters();
  for (size_t i = 0; i < pr.size(); ++i) EXPECT_TRUE(torch::equal(pr[i], pf[i]));
}

// The policy's own log-probs of each item's response at `temperature`, plus `shift`, as behaviour log-probs.
void SetBehaviourLogProbs(Policy& policy, std::vector<RlItem>& items, double temperature, float shift) {
  torch::NoGradGuard no_grad;
  policy.model().eval();
  for (auto& it : items) {
    auto batch = BuildSequenceBatch({&it.prompt}, {it.response_ids}, policy.pad_id());
    ASSERT_TRUE(batch.ok());
    auto lp = policy.ResponseLogProbs(*batch, temperature);
    ASSERT_TRUE(lp.ok());
    for (int64_t j = 0; j < static_cast<int64_t>(it.response_ids.size()); ++j) {
      it.behaviour_logprobs.push_back((*lp)[0][j].item<float>() + shift);
    }
  }
}

TEST(train, RlStepReportsLogProbMismatchAgainstBehaviourLogProbs) {
  auto policy = LoadPolicy();
  auto items = MakeRlItems(*policy, {1.0, 0.0});
  // Behaviour log-probs that are the learner's own, shifted by 0.25 nats per token.
  SetBehaviourLogProbs(*policy, items, /*temperature=*/1.0, /*shift=*/-0.25f);
  Trainer trainer(policy.get(), nullptr, FastOptimizer(1));
  auto r = trainer.RlStep(items, StableReinforce(2));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NEAR(r->metrics.at("logprob_mismatch"), 0.25, 1e-3);
}

TEST(train, RlStepTakesLogProbsAtTheSamplingTemperature) {
  auto policy = LoadPolicy();
  auto items = MakeRlItems(*policy, {1.0, 0.0});
  SetBehaviourLogProbs(*policy, items, /*temperature=*/0.5, /*shift=*/0.0f);
  Trainer trainer(policy.get(), nullptr, FastOptimizer(1));
  RlStepOptions options = StableReinforce(2);
  options.temperature = 0.5;
  auto r = trainer.RlStep(items, options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_LT(r->metrics.at("logprob_mismatch"), 1e-4);  // same temperature as the "actor"
}

// One minibatch, so every ratio is measured before any update: on-policy it is exactly 1, while in the
// off-policy mode it is taken against behaviour log-probs 0.25 nats below the learner's: e^0.25 everywhere.
TEST(train, OffPolicyRatioIsTakenAgainstTheBehaviourLogProbs) {
  for (const bool off_policy : {false, true}) {
    auto policy = LoadPolicy();
    auto items = MakeRlItems(*policy, {1.5, 0.0, 1.0, -0.5});
    SetBehaviourLogProbs(*policy, items, /*temperature=*/1.0, /*shift=*/-0.25f);
    Trainer trainer(policy.get(), nullptr, FastOptimizer(1));
    RlStepOptions options = StableReinforce(/*train_batch=*/4);
    options.ratio_against_behaviour = off_policy;
    auto r = trainer.RlStep(items, options);
    ASSERT_TRUE(r.ok()) << r.status();
    const double expected = off_policy ? std::exp(0.25) : 1.0;
    EXPECT_NEAR(r->metrics.at("ratio_min"), expected, 1e-3) << "off_policy=" << off_policy;
    EXPECT_NEAR(r->metrics.at("ratio_max"), expected, 1e-3) << "off_policy=" << off_policy;
    EXPECT_NEAR(r->metrics.at("logprob_mismatch"), 0.25, 1e-3);
    // e^0.25 = 1.28 is outside 1 ± 0.2: the positive-advantage tokens are clipped.
    if (off_policy) EXPECT_GT(r->metrics.at("clip_fraction"), 0.0);
    if (!off_policy) EXPECT_EQ(r->metrics.at("clip_fraction"), 0.0);
  }
  // Without behaviour log-probs the off-policy ratio has nothing to divide by.
  auto policy = LoadPolicy();
  Trainer trainer(policy.get(), nullptr, FastOptimizer(1));
  RlStepOptions options = StableReinforce(2);
  options.ratio_against_behaviour = true;
  EXPECT_EQ(trainer.RlStep(MakeRlItems(*policy, {1.0, 0.0}), options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(train, NonFiniteRewardNeverCorruptsTheWeights) {
  auto policy = LoadPolicy();
  auto items = MakeRlItems(*policy, {1.0, std::nan(""), 0.0, 1.0});
  Trainer trainer(policy.get(), nullptr, FastOptimizer(2));
  const auto before = Snapshot(*policy);
  auto r = trainer.RlStep(items, StableReinforce(4));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(AllFinite(*policy));
  if (r->optimizer_steps == 0) {
    EXPECT_EQ(r->skipped_steps, 1);
    EXPECT_EQ(MaxAbsChange(*policy, before), 0.0);
  } else {
    EXPECT_TRUE(std::isfinite(r->loss));
  }
  // A huge reward is clipped (reward_clip) and whitened: the step stays finite.
  auto huge = MakeRlItems(*policy, {1e30, 0.0, -1e30, 1.0});
  auto r2 = trainer.RlStep(huge, StableReinforce(4));
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_TRUE(AllFinite(*policy));
}

TEST(train, HugeLogRatioIsPreClippedAndStaysFinite) {
  // logp_old comes from the learner's own forward, so a huge ratio needs the weights to move a lot
  // between minibatches: a very large LR with several minibatch epochs does that.
  auto policy = LoadPolicy();
  auto items = MakeRlItems(*policy, {2.0, -1.0, 1.0, 0.0});
  OptimizerOptions o = FastOptimizer(8);
  o.lr = 1.0;
  o.grad_clip = 1e9;
  Trainer trainer(policy.get(), nullptr, o);
  RlStepOptions options = StableReinforce(1);
  options.ppo_epochs = 2;
  auto r = trainer.RlStep(items, options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(AllFinite(*policy));
  EXPECT_GE(r->metrics.at("preclip_fraction"), 0.0);
  EXPECT_LE(r->metrics.at("preclip_fraction"), 1.0);
}

TEST(train, RlStepRejectsEmptyResponses) {
  auto policy = LoadPolicy();
  auto items = MakeRlItems(*policy, {1.0});
  items[0].response_ids.clear();
  Trainer trainer(policy.get(), nullptr, FastOptimizer(1));
  EXPECT_EQ(trainer.RlStep(items, StableReinforce(1)).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(train, GenerateStopsAtEndOfTurnAndReturnsLogProbs) {
  auto policy = LoadPolicy();
  auto items = MakeSftItems(*policy, 0, 2);
  model::SamplingParams s;
  s.max_new_tokens = 12;
  s.seed = 3;
  auto out = policy->Generate({&items[0].prompt, &items[1].prompt}, {s, s});
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), 2u);
  for (const auto& g : *out) {
    EXPECT_GE(g.token_ids.size(), 1u);
    EXPECT_LE(g.token_ids.size(), 12u);
    EXPECT_EQ(g.logprobs.size(), g.token_ids.size());
    for (float lp : g.logprobs) EXPECT_TRUE(std::isfinite(lp) && lp <= 0);
  }
}

TEST(train, LearningRateScheduleWarmsUpPeaksAndDecaysToTheFloor) {
  LrSchedule s{.peak_lr = 1e-3, .warmup_ratio = 0.1, .min_lr_ratio = 0.1, .total_steps = 100};
  EXPECT_NEAR(LearningRateAt(s, 0), 1e-4, 1e-12);   // 1/10 of the way up
  EXPECT_NEAR(LearningRateAt(s, 4), 5e-4, 1e-12);
  EXPECT_NEAR(LearningRateAt(s, 9), 1e-3, 1e-12);   // end of warmup: the peak
  EXPECT_NEAR(LearningRateAt(s, 10), 1e-3, 1e-12);  // cosine starts at the peak
  EXPECT_NEAR(LearningRateAt(s, 55), 1e-4 + 0.5 * 9e-4, 1e-12);  // half way: mid-point
  EXPECT_NEAR(LearningRateAt(s, 100), 1e-4, 1e-12);  // the floor
  EXPECT_NEAR(LearningRateAt(s, 1000), 1e-4, 1e-12);
  LrSchedule none{.peak_lr = 2e-5, .warmup_ratio = 0.0, .min_lr_ratio = 0.0, .total_steps = 10};
  EXPECT_NEAR(LearningRateAt(none, 0), 2e-5, 1e-15);
}


// Data parallel: two Gloo ranks (threads here, processes in the learner), each with its own replica and
// half of every batch, take the same SFT and StableReinforce steps as one process with all of it.
struct StepLog {
  std::vector<double> values;  // losses and summed diagnostics, in step order
  std::vector<at::Tensor> weights;
};

StepLog RunSteps(Trainer& trainer, Policy& policy) {
  StepLog log;
  // 5 items: the ranks get 3 and 2, and the RL minibatch of 3 leaves one rank a single row.
  auto sft = trainer.SftStep(MakeSftItems(policy, 0, 5));
  EXPECT_TRUE(sft.ok()) << sft.status();
  auto items = MakeRlItems(policy, {1.5, 0.0, 1.0, -0.5, 0.5});
  SetBehaviourLogProbs(policy, items, /*temperature=*/1.0, /*shift=*/-0.1f);
  auto rl = trainer.RlStep(items, StableReinforce(/*train_batch=*/3));
  EXPECT_TRUE(rl.ok()) << rl.status();
  if (!sft.ok() || !rl.ok()) return log;
  log.values = {sft->loss,
                sft->grad_norm,
                rl->loss,
                rl->grad_norm,
                static_cast<double>(rl->optimizer_steps),
                rl->metrics.at("clip_fraction"),
                rl->metrics.at("adv_mean"),
                rl->metrics.at("logprob_mismatch"),
                rl->metrics.at("tokens")};
  log.weights = Snapshot(policy);
  return log;
}

TEST(train, DataParallelRanksTakeTheStepsOfOneProcess) {
  auto alone = LoadPolicy();
  Trainer single(alone.get(), nullptr, FastOptimizer(4));
  const StepLog expected = RunSteps(single, *alone);
  ASSERT_FALSE(expected.values.empty());

  std::vector<StepLog> logs(2);
  const bool ran = dist::testing::OnGlooRanks(2, std::chrono::seconds(120), [&](int rank, dist::ProcessGroup* group) {
    auto replica = LoadPolicy();
    Trainer trainer(replica.get(), nullptr, FastOptimizer(4));
    trainer.set_process_group(group);
    logs[static_cast<size_t>(rank)] = RunSteps(trainer, *replica);
  });
  if (!ran) GTEST_SKIP() << "this build has no Gloo backend";
  ASSERT_EQ(logs[0].weights.size(), expected.weights.size());
  ASSERT_EQ(logs[1].weights.size(), expected.weights.size());
  for (size_t i = 0; i < expected.values.size(); ++i) {
    EXPECT_NEAR(logs[0].values[i], expected.values[i], 1e-5 * (1 + std::abs(expected.values[i]))) << "value " << i;
    EXPECT_EQ(logs[0].values[i], logs[1].values[i]) << "value " << i;
  }
  double drift = 0;
  for (size_t i = 0; i < expected.weights.size(); ++i) {
    // The replicas stay bit-identical: they apply the same summed gradient.
    EXPECT_TRUE(torch::equal(logs[0].weights[i], logs[1].weights[i])) << "parameter " << i;
    drift = std::max(drift, (logs[0].weights[i] - expected.weights[i]).abs().max().item<double>());
  }
  // Only summation order differs from one process (two steps of Adam at lr 5e-3).
  EXPECT_LT(drift, 1e-4);
}

}  // namespace
}  // namespace r1r::train
