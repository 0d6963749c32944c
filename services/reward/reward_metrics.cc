#include "services/reward/reward_metrics.h"

namespace r1r::reward {

RewardMetrics::RewardMetrics(obs::Metrics& m)
    : trajectories(m.Counter("r1r_reward_trajectories_total", "Trajectories scored.")),
      rejected_requests(
          m.Counter("r1r_reward_rejected_requests_total", "ScoreTrajectories requests rejected by validation.")),
      judge_failures(m.Counter("r1r_reward_judge_failures_total", "Judge batches that failed after retries.")),
      judge_seconds(
          m.Histogram("r1r_reward_judge_seconds", "Time spent waiting for the judge per request in seconds.")),
      mean(m.Gauge("r1r_reward_mean", "Mean total reward of the last request.")),
      format_rate(m.Gauge("r1r_reward_format_rate", "Share of well-formed responses in the last request.")),
      result_rate(m.Gauge("r1r_reward_result_rate", "Share of correct answers in the last request.")),
      consistency_rate(m.Gauge("r1r_reward_consistency_rate",
                               "Share of responses the referee found consistent (last request).")) {}

}  // namespace r1r::reward
