#include "services/learner/spec_options.h"

#include <absl/strings/str_cat.h>

namespace r1r::learner {

model::TinyConfigOptions TinyOptionsFromSpec(const config::TinyModelSpec& tiny) {
  model::TinyConfigOptions o;
  o.hidden_size = tiny.hidden_size;
  o.num_layers = tiny.num_layers;
  o.num_heads = tiny.num_heads;
  o.num_kv_heads = tiny.num_kv_heads;
  o.intermediate_size = tiny.intermediate_size;
  o.vision_hidden_size = tiny.vision_hidden_size;
  o.vision_depth = tiny.vision_depth;
  o.vision_heads = tiny.vision_heads;
  o.vision_intermediate_size = 2 * tiny.vision_hidden_size;
  o.rope_theta = tiny.rope_theta;
  o.tie_word_embeddings = true;  // halves the embedding parameters of a small-vocabulary model
  return o;
}

vision::ImageProcessorOptions ImageOptionsFromSpec(const config::DataSpec& data) {
  vision::ImageProcessorOptions o;
  o.min_pixels = data.min_pixels;
  o.max_pixels = data.max_pixels;
  return o;
}

train::OptimizerOptions OptimizerOptionsFromSpec(const config::OptimSpec& optim, int64_t total_steps,
                                                 int64_t micro_batch, int64_t micro_batch_tokens) {
  train::OptimizerOptions o;
  o.lr = optim.lr;
  o.warmup_ratio = optim.warmup_ratio;
  o.min_lr_ratio = optim.min_lr_ratio;
  o.weight_decay = optim.weight_decay;
  if (optim.adam_betas.size() == 2) {
    o.beta1 = optim.adam_betas[0];
    o.beta2 = optim.adam_betas[1];
  }
  o.grad_clip = optim.grad_clip;
  o.total_steps = std::max<int64_t>(1, total_steps);
  o.micro_batch = std::max<int64_t>(1, micro_batch);
  o.micro_batch_tokens = std::max<int64_t>(0, micro_batch_tokens);
  return o;
}

train::OptimizerOptions LearnerOptimizerOptions(const config::JobSpec& spec, const config::OptimSpec& optim,
                                                int64_t total_steps, int64_t flag_micro_batch,
                                                int64_t flag_micro_batch_tokens) {
  const config::LearnerSpec& l = spec.learner;
  train::OptimizerOptions o = OptimizerOptionsFromSpec(optim, total_steps, l.micro_batch > 0 ? l.micro_batch : flag_micro_batch,
                                                       l.micro_batch_tokens > 0 ? l.micro_batch_tokens : flag_micro_batch_tokens);
  o.precision = l.precision == "bf16_mixed" ? train::Precision::kBf16Mixed : train::Precision::kModelDtype;
  o.zero_stage = static_cast<int>(l.zero_stage);
  o.gradient_checkpointing = spec.model.gradient_checkpointing;
  o.pack_sequences = l.pack_sequences;
  o.overlap_grad_reduce = l.overlap_grad_reduce;
  return o;
}

absl::Status CheckLearnerWorldSize(const config::JobSpec& spec, int64_t dist_world_size) {
  if (!spec.learner.world_size_given || spec.learner.world_size == dist_world_size) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat("spec learner.world_size is ", spec.learner.world_size,
                                                   " but this learner runs with --dist-world-size ", dist_world_size,
                                                   ": the memory plan and the ranks must agree"));
}

std::string LearnerDtype(const config::JobSpec& spec) {
  if (spec.learner.precision == "bf16_mixed") return "bfloat16";
  if (spec.learner.precision == "fp32") return "float32";
  return spec.model.dtype;  // (ParseJobSpec always resolves the precision)
}

absl::StatusOr<train::RlStepOptions> RlOptionsFromSpec(const config::RlSpec& rl) {
  auto algorithm = rl::ParseAlgorithm(rl.algorithm);
  if (!algorithm.ok()) return absl::InvalidArgumentError(absl::StrCat("rl.algorithm: ", algorithm.status().message()));
  train::RlStepOptions o;
  o.algorithm = rl::ConfigFor(*algorithm, static_cast<int>(std::max<int64_t>(1, rl.samples_per_prompt)));
  o.ratio_against_behaviour = rl.off_policy_steps > 0;
  rl::PolicyLossConfig& loss = o.algorithm.loss;
  loss.clip_eps_low = rl.eps_clip;
  loss.clip_eps_high = rl.eps_clip_high > 0 ? rl.eps_clip_high : rl.eps_clip;
  loss.pre_clip.ratio_min = rl.preclip_min;
  loss.pre_clip.ratio_max = rl.preclip_max;
  if (rl.loss_aggregation == "token_mean") {
    loss.aggregation = rl::LossAggregation::kGlobalTokenMean;
  } else if (rl.loss_aggregation == "sequence_mean") {
    loss.aggregation = rl::LossAggregation::kSequenceMeanOfTokenMeans;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("rl.loss_aggregation: must be sequence_mean or token_mean, got '",
                                                   rl.loss_aggregation, "'"));
  }
  rl::AdvantageConfig& adv = o.algorithm.advantage;
  if (rl.adv_filter == "none") {
    adv.filter.enabled = false;
  } else if (rl.adv_filter == "code_mean3") {
    adv.filter.window = rl::FilterWindow::kReleasedCodeMeanShift;
  } else if (rl.adv_filter == "sigma3") {
    adv.filter.window = rl::FilterWindow::kPaperSymmetric;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("rl.adv_filter: must be sigma3, code_mean3 or none, got '", rl.adv_filter, "'"));
  }
  adv.kl_coef = rl.kl_coef;
  if (rl.kl_estimator == "k1") {
    adv.kl_estimator = rl::KlEstimator::kK1;
  } else if (rl.kl_estimator == "k2") {
    adv.kl_estimator = rl::KlEstimator::kK2;
  } else if (rl.kl_estimator == "k3") {
    adv.kl_estimator = rl::KlEstimator::kK3;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("rl.kl_estimator: must be k1, k2 or k3, got '", rl.kl_estimator, "'"));
  }
  adv.gamma = rl.gamma;
  o.train_batch_size = std::max<int64_t>(1, rl.train_batch_size);
  o.ppo_epochs = std::max<int64_t>(1, rl.ppo_epochs);
  o.temperature = rl.temperature > 0 ? rl.temperature : 1.0;
  if (absl::Status s = rl::Validate(o.algorithm); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("rl: ", s.message()));
  }
  return o;
}

}  // namespace r1r::learner
