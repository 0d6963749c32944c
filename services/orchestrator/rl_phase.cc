#include "services/orchestrator/rl_phase.h"

#include <algorithm>
#include <chrono>
#include <future>
#include <map>
#include <string>
#include <vector>

#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>

#include "common/data/transforms.h"
#include "common/rpc/status.h"
#include "services/orchestrator/eval_phase.h"
#include "services/orchestrator/recovery.h"
#include "services/orchestrator/wire_prompts.h"

namespace r1r::orchestrator {
namespace {

using Clock = std::chrono::steady_clock;
using Rollouts = absl::StatusOr<std::vector<v1::Trajectory>>;

v1::SamplingParams RolloutSampling(const config::RlSpec& rl, int64_t step) {
  v1::SamplingParams sampling;
  sampling.set_temperature(static_cast<float>(rl.temperature));
  sampling.set_top_p(static_cast<float>(rl.top_p));
  sampling.set_top_k(static_cast<int32_t>(rl.top_k));
  sampling.set_max_new_tokens(static_cast<int32_t>(rl.max_new_tokens));
  sampling.set_seed(static_cast<uint64_t>(1000 + step));
  return sampling;
}

// Wall seconds of the parts of one RL step.
struct StepSeconds {
  double generation = 0, reward = 0, learner = 0, weight_sync = 0, total = 0;
};

// The step's record metrics (means over the rollouts, the learner's own metrics, the part times) and
// its Prometheus histograms.
std::map<std::string, double> RecordStep(JobContext& ctx, const std::vector<v1::RewardBreakdown>& rewards,
                                         const v1::StepMetrics& m, const StepSeconds& t, double* reward_mean,
                                         double* accuracy) {
  double acc = 0, fmt = 0, reward = 0;
  for (const auto& r : rewards) {
    acc += r.result();
    fmt += r.format();
    reward += r.total();
  }
  const double k = static_cast<double>(rewards.size());
  std::map<std::string, double> metrics = {{"reward_mean", reward / k},         {"accuracy", acc / k},
                                           {"format_rate", fmt / k},            {"loss", m.loss()},
                                           {"generation_seconds", t.generation}, {"reward_seconds", t.reward},
                                           {"learner_seconds", t.learner},      {"weight_sync_seconds", t.weight_sync},
                                           {"learner_compute_seconds", m.seconds()},
                                           {"step_seconds", t.total}};
  for (const auto& [key, v] : m.metrics()) metrics[key] = v;
  for (OrchestratorMetrics::RlPart part : OrchestratorMetrics::kRlParts) {
    ctx.metrics->RlPartSeconds(part).Observe(metrics[absl::StrCat(OrchestratorMetrics::RlPartName(part), "_seconds")]);
  }
  ctx.metrics->rl_step_seconds.Observe(t.total);
  ctx.metrics->policy_version.Set(static_cast<double>(ctx.version));
  *reward_mean = reward / k;
  *accuracy = acc / k;
  return metrics;
}

}  // namespace

absl::Status RunRlPhase(JobContext& ctx) {
  const config::RlSpec& rl = ctx.spec.rl;
  const int64_t n = static_cast<int64_t>(ctx.data.rl.size());
  if (n == 0) return absl::FailedPreconditionError("the RL set is empty");
  const int64_t steps =
      rl.steps > 0 ? rl.steps : rl.epochs * ((n + rl.rollout_batch_size - 1) / rl.rollout_batch_size);
  const int64_t optimizer_steps = steps * rl.ppo_epochs * (rl.rollout_batch_size / rl.train_batch_size);
  auto state = ctx.InitLearner("rl", optimizer_steps);
  if (!state.ok()) return state.status();
  if (absl::Status s = SyncActors(ctx); !s.ok()) return s;
  if (!ctx.spec.sft.enabled) {
    if (absl::Status s = RecordEval(ctx, "after_sft", false); !s.ok()) return s;
  }
  const int64_t prompts_per_step = std::max<int64_t>(1, rl.rollout_batch_size / rl.samples_per_prompt);
  data::EpochSampler sampler(static_cast<size_t>(n), 0, 1, {static_cast<uint64_t>(ctx.spec.data.seed) + 17, 0, 0});
  for (int64_t skip = 0; skip < state->rl_steps(); ++skip) sampler.NextBatch(static_cast<size_t>(prompts_per_step));
  // Off-policy mode: step t+1's rollouts are generated while the learner trains on step t's.
  const bool overlap = rl.off_policy_steps > 0;
  // Step `s`'s prompts, sampled by the weights the actors hold (version `version`).
  auto generate = [&](int64_t s, int64_t version, std::vector<size_t> idx) -> Rollouts {
    std::vector<v1::Prompt> prompts =
        MakePrompts(ctx.data.rl, idx, absl::StrCat("rl", s), static_cast<int>(rl.samples_per_prompt));
    // On-policy, the actors hold ctx.version and a restarted one can be given it again; ahead of time,
    // on another thread, that would race the step's own weight sync.
    return overlap ? ctx.cluster->Generate(prompts, RolloutSampling(rl, s), version)
                   : GenerateOnCurrentWeights(ctx, prompts, RolloutSampling(rl, s));
  };
  std::future<Rollouts> ahead;
  for (int64_t step = state->rl_steps(); step < steps; ++step) {
    if (absl::Status s = ctx.CheckCancelled(); !s.ok()) return s;
    StepSeconds t;
    const auto t0 = Clock::now();
    Rollouts traj = ahead.valid() ? ahead.get()
                                  : generate(step, ctx.version, sampler.NextBatch(static_cast<size_t>(prompts_per_step)));
    if (!traj.ok()) return traj.status();
    t.generation = rpc::SecondsSince(t0);  // overlapped: only the wait for the actors
    if (overlap) {  // the actors are idle now: give them the learner's newest weights
      const auto ts = Clock::now();
      if (absl::Status s = SyncActors(ctx); !s.ok()) return s;
      t.weight_sync = rpc::SecondsSince(ts);
    }
    const auto t1 = Clock::now();
    auto rewards = ctx.cluster->Score(*traj, ctx.Weights());
    if (!rewards.ok()) return rewards.status();
    t.reward = rpc::SecondsSince(t1);
    if (overlap && step + 1 < steps) {
      ahead = std::async(std::launch::async, generate, step + 1, ctx.version,
                         sampler.NextBatch(static_cast<size_t>(prompts_per_step)));
    }
    v1::ExperienceBatch batch;
    for (const auto& tr : *traj) *batch.add_trajectories() = tr;
    for (const auto& r : *rewards) *batch.add_rewards() = r;
    const auto t2 = Clock::now();
    auto m = ctx.cluster->RlStep(batch);
    if (!m.ok()) return m.status();
    t.learner = rpc::SecondsSince(t2);
    ctx.version = m->policy_version();
    if (!overlap) {
      const auto t3 = Clock::now();
      if (absl::Status s = SyncActors(ctx); !s.ok()) return s;
      t.weight_sync = rpc::SecondsSince(t3);
    }
    t.total = rpc::SecondsSince(t0);
    double reward_mean = 0, accuracy = 0;
    const std::map<std::string, double> metrics = RecordStep(ctx, *rewards, *m, t, &reward_mean, &accuracy);
    if (absl::Status s = ctx.Progress(step + 1, steps, metrics,
                                      absl::StrFormat("rl step %d/%d reward %.3f accuracy %.3f loss %.4f", step + 1,
                                                      steps, reward_mean, accuracy, m->loss()));
        !s.ok())
      return s;
  }
  if (overlap) {  // the last step's weights, for the evaluations that follow
    if (absl::Status s = SyncActors(ctx); !s.ok()) return s;
  }
  auto saved = ctx.cluster->SaveCheckpoint(steps, "");
  return saved.ok() ? absl::OkStatus() : saved.status();
}

}  // namespace r1r::orchestrator
