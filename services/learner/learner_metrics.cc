#include "services/learner/learner_metrics.h"

#include <cmath>

#include <absl/strings/str_cat.h>

namespace r1r::learner {
namespace {

constexpr const char* kParts[] = {"forward", "backward", "optimizer"};

}  // namespace

LearnerMetrics::Phase::Phase(obs::Metrics& m, const std::string& phase)
    : step_seconds(m.Histogram("r1r_learner_step_seconds", "Wall time of one learner step in seconds.",
                               {{"phase", phase}})),
      part_seconds{},
      loss(m.Gauge("r1r_learner_loss", "Loss of the last step.", {{"phase", phase}})),
      grad_norm(m.Gauge("r1r_learner_grad_norm", "Gradient norm (before clipping) of the last step.",
                        {{"phase", phase}})),
      learning_rate(m.Gauge("r1r_learner_learning_rate", "Learning rate of the last optimizer step.",
                            {{"phase", phase}})),
      tokens_per_second(m.Gauge("r1r_learner_tokens_per_second", "Trained tokens per second in the last step.",
                                {{"phase", phase}})),
      steps(m.Counter("r1r_learner_steps_total", "Learner steps served.", {{"phase", phase}})),
      optimizer_steps(m.Counter("r1r_learner_optimizer_steps_total", "Optimizer steps taken.", {{"phase", phase}})),
      skipped_steps(m.Counter("r1r_learner_skipped_steps_total",
                              "Optimizer steps skipped for a non-finite loss or gradient.", {{"phase", phase}})) {
  for (size_t i = 0; i < part_seconds.size(); ++i) {
    part_seconds[i] = &m.Histogram("r1r_learner_step_part_seconds", "Learner step time by part in seconds.",
                                   {{"phase", phase}, {"part", kParts[i]}});
  }
}

LearnerMetrics::LearnerMetrics(obs::Metrics& m)
    : policy_version(m.Gauge("r1r_learner_policy_version", "Policy version the learner holds.")),
      parameters(m.Gauge("r1r_learner_parameters", "Trainable parameters of the policy.")),
      truncated_targets(m.Counter("r1r_learner_truncated_targets_total", "SFT targets cut to sft.max_response_tokens.")),
      stale_trajectories(m.Counter(
          "r1r_learner_stale_trajectories_total",
          "Trajectories trained on one policy version after the one that sampled them (off-policy mode).")),
      checkpoint_seconds(
          m.Histogram("r1r_learner_checkpoint_seconds", "Time to write a training checkpoint in seconds.")),
      checkpoints_pruned(
          m.Counter("r1r_learner_checkpoints_pruned_total", "Training checkpoints deleted by rl.keep_checkpoints.")),
      weight_sync_seconds(
          m.Histogram("r1r_learner_weight_sync_seconds", "Time to encode and stream the weights once in seconds.")),
      weight_sync_bytes(m.Counter("r1r_learner_weight_sync_bytes_total", "Weight bytes streamed to actors.")),
      sft_(m, "sft"),
      rl_(m, "rl"),
      image_cache_bytes_(
          m.Gauge("r1r_learner_image_cache_bytes", "Pixel bytes held by the processed-image LRU cache.")),
      image_cache_evictions_(
          m.Gauge("r1r_learner_image_cache_evictions", "Images evicted from the processed-image cache so far.")),
      metrics_(m) {
  struct Named {
    const char* key;
    const char* name;
    const char* help;
  };
  for (const Named& g : {Named{"clip_fraction", "r1r_rl_clip_fraction", "Share of tokens whose ratio was clipped."},
                         Named{"preclip_fraction", "r1r_rl_preclip_fraction",
                               "Share of tokens whose log-ratio hit the pre-clip bounds."},
                         Named{"adv_filtered_fraction", "r1r_rl_adv_filtered_fraction",
                               "Share of tokens dropped by the advantage filter."},
                         Named{"approx_kl", "r1r_rl_approx_kl", "Mean per-token approximate KL(old || new)."},
                         Named{"reward_mean", "r1r_learner_reward_mean", "Mean total reward of the last rollout."},
                         Named{"response_length_mean", "r1r_learner_response_length_tokens",
                               "Mean response length of the last rollout in tokens."},
                         Named{"logprob_mismatch", "r1r_learner_logprob_mismatch_nats",
                               "Mean |actor - learner| log-prob per token of the last rollout, in nats."}}) {
    rl_gauges_.emplace_back(g.key, &m.Gauge(g.name, g.help));
  }
}

void LearnerMetrics::RecordStep(const std::string& phase, const train::StepResult& r, int64_t image_cache_bytes,
                                int64_t image_cache_evictions) {
  Phase& p = phase == "rl" ? rl_ : sft_;
  p.step_seconds.Observe(r.seconds);
  for (size_t i = 0; i < p.part_seconds.size(); ++i) {
    auto it = r.metrics.find(absl::StrCat(kParts[i], "_seconds"));
    if (it != r.metrics.end()) p.part_seconds[i]->Observe(it->second);
  }
  if (std::isfinite(r.loss)) p.loss.Set(r.loss);
  image_cache_bytes_.Set(static_cast<double>(image_cache_bytes));
  image_cache_evictions_.Set(static_cast<double>(image_cache_evictions));
  p.grad_norm.Set(r.grad_norm);
  p.learning_rate.Set(r.learning_rate);
  p.steps.Increment();
  p.optimizer_steps.Increment(static_cast<double>(r.optimizer_steps));
  p.skipped_steps.Increment(static_cast<double>(r.skipped_steps));
  if (auto it = r.metrics.find("tokens"); it != r.metrics.end() && r.seconds > 0) {
    p.tokens_per_second.Set(it->second / r.seconds);
  }
  if (phase != "rl") return;
  for (const auto& [key, gauge] : rl_gauges_) {
    if (auto it = r.metrics.find(key); it != r.metrics.end() && std::isfinite(it->second)) gauge->Set(it->second);
  }
  if (auto it = r.metrics.find("kl"); it != r.metrics.end() && std::isfinite(it->second)) {
    if (kl_ == nullptr) kl_ = &metrics_.Gauge("r1r_rl_kl", "Mean per-token KL(policy || reference) before the step.");
    kl_->Set(it->second);
  }
}

}  // namespace r1r::learner
