#include "services/actor/actor_metrics.h"

namespace r1r::actor {

ActorMetrics::ActorMetrics(obs::Metrics& m)
    : policy_version(m.Gauge("r1r_actor_policy_version", "Policy version the actor holds (-1 = none).")),
      weight_sync_seconds(
          m.Histogram("r1r_actor_weight_sync_seconds", "Time to pull and load one weights version in seconds.")),
      weight_sync_bytes(m.Counter("r1r_actor_weight_sync_bytes_total", "Weight bytes pulled from the learner.")),
      weight_sync_failures(m.Counter("r1r_actor_weight_sync_failures_total", "Weight pulls that failed.")),
      inflight_requests(m.Gauge("r1r_actor_inflight_requests", "GenerateRollouts calls in progress.")),
      rollout_seconds(
          m.Histogram("r1r_actor_rollout_seconds", "Wall time of one GenerateRollouts call in seconds.")),
      generated_tokens(m.Counter("r1r_actor_generated_tokens_total", "Response tokens generated.")),
      trajectories(m.Counter("r1r_actor_trajectories_total", "Trajectories generated.")),
      tokens_per_second(m.Gauge("r1r_actor_tokens_per_second", "Generated tokens per second in the last call.")) {
  policy_version.Set(-1);
}

}  // namespace r1r::actor
