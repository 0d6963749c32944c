#include "services/orchestrator/eval_phase.h"

#include <map>
#include <numeric>
#include <vector>

#include <absl/strings/str_format.h>

#include "common/eval/judgement.h"
#include "services/orchestrator/recovery.h"
#include "services/orchestrator/wire_prompts.h"

namespace r1r::orchestrator {
namespace {

struct EvalResult {
  double accuracy = 0, format_rate = 0, consistency_rate = 0, voting_accuracy = -1;
};

// Accuracy, format and consistency rates of greedy answers on the held-out set (and voting@K).
absl::StatusOr<EvalResult> Evaluate(JobContext& ctx, const std::string& stage, bool with_voting) {
  EvalResult r;
  const std::vector<data::PreferenceSample>& heldout = ctx.data.heldout;
  if (heldout.empty()) return r;
  std::vector<size_t> all(heldout.size());
  std::iota(all.begin(), all.end(), 0);
  v1::SamplingParams greedy;
  greedy.set_temperature(0);
  greedy.set_max_new_tokens(static_cast<int32_t>(ctx.spec.rl.max_new_tokens));
  greedy.set_seed(1);
  auto traj = GenerateOnCurrentWeights(ctx, MakePrompts(heldout, all, stage), greedy);
  if (!traj.ok()) return traj.status();
  auto rewards = ctx.cluster->Score(*traj, ctx.Weights());
  if (!rewards.ok()) return rewards.status();
  for (const auto& b : *rewards) {
    r.accuracy += b.result();
    r.format_rate += b.format();
    r.consistency_rate += b.consistency() > 0 ? 1 : 0;
  }
  const double n = static_cast<double>(rewards->size());
  r.accuracy /= n;
  r.format_rate /= n;
  r.consistency_rate /= n;
  if (with_voting && ctx.spec.eval.votes > 1) {
    const int k = static_cast<int>(ctx.spec.eval.votes);
    v1::SamplingParams sample;
    sample.set_temperature(static_cast<float>(ctx.spec.eval.vote_temperature));
    sample.set_max_new_tokens(static_cast<int32_t>(ctx.spec.rl.max_new_tokens));
    sample.set_seed(7);
    auto votes = GenerateOnCurrentWeights(ctx, MakePrompts(heldout, all, stage + "-vote", k), sample);
    if (!votes.ok()) return votes.status();
    eval::Tally tally;
    for (size_t i = 0; i < heldout.size(); ++i) {
      std::vector<eval::Outcome> outcomes;
      for (int j = 0; j < k; ++j) {
        outcomes.push_back(
            eval::OutcomeFor(eval::ParseChoice((*votes)[i * k + j].response_text()), heldout[i].label));
      }
      tally.Add(eval::MajorityVote(outcomes) == eval::Outcome::kCorrect);
    }
    r.voting_accuracy = tally.Accuracy();
  }
  return r;
}

}  // namespace

absl::Status RecordEval(JobContext& ctx, const std::string& stage, bool with_voting) {
  if (ctx.job.phases().empty()) return absl::OkStatus();
  for (const auto& p : ctx.job.phases()) {
    if (p.phase() == v1::PHASE_EVAL && p.metrics().count(stage + ".accuracy")) return absl::OkStatus();  // resumed
  }
  auto r = Evaluate(ctx, stage, with_voting);
  if (!r.ok()) return r.status();
  std::map<std::string, double> m = {{stage + ".accuracy", r->accuracy},
                                     {stage + ".format_rate", r->format_rate},
                                     {stage + ".consistency_rate", r->consistency_rate}};
  if (r->voting_accuracy >= 0) m[stage + ".voting_accuracy"] = r->voting_accuracy;
  ctx.metrics->EvalAccuracy(stage).Set(r->accuracy);
  ctx.metrics->EvalFormatRate(stage).Set(r->format_rate);
  return ctx.UpdatePhase(v1::PHASE_EVAL,
                         [&](v1::PhaseProgress& p) {
                           for (const auto& [k, v] : m) (*p.mutable_metrics())[k] = v;
                         },
                         absl::StrFormat("eval %s: accuracy %.3f, format %.3f, consistency %.3f", stage, r->accuracy,
                                         r->format_rate, r->consistency_rate));
}

absl::Status RunEvalPhase(JobContext& ctx) {
  if (!ctx.spec.sft.enabled && !ctx.spec.rl.enabled) {
    // Nothing trained in this job: the learner loads the named model so the actors can pull it.
    auto state = ctx.InitLearner("sft", 0);
    if (!state.ok()) return state.status();
    if (absl::Status s = SyncActors(ctx); !s.ok()) return s;
    return RecordEval(ctx, "final", true);
  }
  return RecordEval(ctx, ctx.spec.rl.enabled ? "after_rl" : "after_sft_final", true);
}

}  // namespace r1r::orchestrator
