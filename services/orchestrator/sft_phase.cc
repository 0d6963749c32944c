#include "services/orchestrator/sft_phase.h"

#include <absl/strings/str_format.h>

#include "common/data/transforms.h"
#include "services/orchestrator/eval_phase.h"
#include "services/orchestrator/recovery.h"
#include "services/orchestrator/wire_prompts.h"

namespace r1r::orchestrator {

absl::Status RunSftPhase(JobContext& ctx) {
  const int64_t batch = ctx.spec.sft.batch_size;
  const int64_t n = static_cast<int64_t>(ctx.data.sft.size());
  if (n == 0) return absl::FailedPreconditionError("the SFT set is empty");
  const int64_t per_epoch = (n + batch - 1) / batch;
  const int64_t total = per_epoch * ctx.spec.sft.epochs;
  auto state = ctx.InitLearner("sft", total);
  if (!state.ok()) return state.status();
  if (absl::Status s = SyncActors(ctx); !s.ok()) return s;
  if (absl::Status s = RecordEval(ctx, "before_sft", false); !s.ok()) return s;
  data::EpochSampler sampler(static_cast<size_t>(n), 0, 1, {static_cast<uint64_t>(ctx.spec.data.seed), 0, 0});
  // Resumed: the batches the learner already took are drawn and dropped, so the order stays the same.
  for (int64_t skip = 0; skip < state->sft_steps(); ++skip) sampler.NextBatch(static_cast<size_t>(batch));
  for (int64_t step = state->sft_steps(); step < total; ++step) {
    if (absl::Status s = ctx.CheckCancelled(); !s.ok()) return s;
    v1::SftStepRequest req;
    for (size_t i : sampler.NextBatch(static_cast<size_t>(batch))) {
      const auto& sample = ctx.data.sft[i];
      if (!sample.reasoning) continue;  // rows without a trace cannot teach the format
      v1::SftExample* ex = req.add_examples();
      *ex->mutable_preference() = ToPreference(sample);
      ex->set_target_text(*sample.reasoning);
    }
    if (req.examples_size() == 0) return absl::FailedPreconditionError("SFT rows have no reasoning traces");
    auto m = ctx.cluster->SftStep(req);
    if (!m.ok()) return m.status();
    ctx.version = m->policy_version();
    if (absl::Status s = ctx.Progress(step + 1, total, {{"loss", m->loss()}, {"learning_rate", m->learning_rate()}},
                                      absl::StrFormat("sft step %d/%d loss %.4f", step + 1, total, m->loss()));
        !s.ok())
      return s;
  }
  auto saved = ctx.cluster->SaveCheckpoint(total, "");
  if (!saved.ok()) return saved.status();
  if (absl::Status s = SyncActors(ctx); !s.ok()) return s;
  return RecordEval(ctx, "after_sft", false);
}

}  // namespace r1r::orchestrator
