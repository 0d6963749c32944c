// The job spec's model/optim/rl sections as the option structs of common/train and common/rl.
#pragma once

#include <absl/status/statusor.h>

#include "common/config/job_spec.h"
#include "common/model/config.h"
#include "common/train/trainer.h"
#include "common/vision/image_processor.h"

namespace r1r::learner {

// model.tiny → TinyConfigOptions (vocab size comes from the tokenizer later).
model::TinyConfigOptions TinyOptionsFromSpec(const config::TinyModelSpec& tiny);

// data.min_pixels/max_pixels over the Qwen2-VL processor defaults.
vision::ImageProcessorOptions ImageOptionsFromSpec(const config::DataSpec& data);

train::OptimizerOptions OptimizerOptionsFromSpec(const config::OptimSpec& optim, int64_t total_steps,
                                                 int64_t micro_batch, int64_t micro_batch_tokens);

// The same, plus the spec's learner section (precision, zero_stage; learner.micro_batch and
// micro_batch_tokens override the flags' values when > 0; pack_sequences, overlap_grad_reduce) and model.gradient_checkpointing.
train::OptimizerOptions LearnerOptimizerOptions(const config::JobSpec& spec, const config::OptimSpec& optim,
                                                int64_t total_steps, int64_t flag_micro_batch,
                                                int64_t flag_micro_batch_tokens);

// FAILED_PRECONDITION naming both numbers when the spec names learner.world_size and it differs from
// the learner's --dist-world-size (the plan was checked for one and the job would run on the other).
absl::Status CheckLearnerWorldSize(const config::JobSpec& spec, int64_t dist_world_size);

// The dtype the learner holds its weights in: "float32" (learner.precision fp32) or "bfloat16" (bf16_mixed).
std::string LearnerDtype(const config::JobSpec& spec);

// rl.algorithm picks the variant; rl.eps_clip(_high), preclip_min/max, adv_filter, kl_coef/estimator
// gamma and temperature then override its constants (a variant that disables pre-clip or the filter keeps it off).
absl::StatusOr<train::RlStepOptions> RlOptionsFromSpec(const config::RlSpec& rl);

}  // namespace r1r::learner
