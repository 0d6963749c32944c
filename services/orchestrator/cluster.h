// The orchestrator's view of the other processes: one learner, N actors, one reward aggregator.
// Every call has a deadline and retries on UNAVAILABLE; rollouts are spread over the actors and
// generated in parallel.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <absl/status/statusor.h>

#include "common/rpc/client.h"
#include "r1r/v1/actor.grpc.pb.h"
#include "r1r/v1/learner.grpc.pb.h"
#include "r1r/v1/reward.grpc.pb.h"

namespace r1r::orchestrator {

struct ClusterTargets {
  std::string learner;
  std::vector<std::string> actors;
  std::string reward;
  std::string auth_token;
};

class Cluster {
 public:
  // `stopping` (may be null) cuts long waits for a restarting peer short when the orchestrator stops.
  static absl::StatusOr<std::unique_ptr<Cluster>> Connect(const ClusterTargets& targets,
                                                          const std::atomic<bool>* stopping = nullptr);

  absl::StatusOr<v1::LearnerState> InitLearner(const v1::InitRequest& req);
  // One GetState call, no retries: whether the learner is up, and which job it holds.
  absl::StatusOr<v1::LearnerState> LearnerState();
  absl::StatusOr<v1::StepMetrics> SftStep(const v1::SftStepRequest& req);
  absl::StatusOr<v1::StepMetrics> RlStep(const v1::ExperienceBatch& req);
  absl::StatusOr<std::string> SaveCheckpoint(int64_t data_cursor, const std::string& export_dir);
  // One GetInfo call per actor, no retries: the policy version each holds (-1 = none).
  absl::StatusOr<std::vector<int64_t>> ActorVersions();
  // Every actor pulls weights `version` from the learner; returns the slowest actor's seconds.
  absl::StatusOr<double> SyncActors(int64_t version, const std::string& model_dir);
  // Splits prompts over the actors (contiguous chunks, each sent in calls of at most
  // rpc::kMaxPromptsPerGenerate) and generates in parallel; the result keeps the prompts' order.
  absl::StatusOr<std::vector<v1::Trajectory>> Generate(const std::vector<v1::Prompt>& prompts,
                                                       const v1::SamplingParams& sampling, int64_t version);
  absl::StatusOr<std::vector<v1::RewardBreakdown>> Score(const std::vector<v1::Trajectory>& trajectories,
                                                         const v1::RewardWeights& weights);
  const ClusterTargets& targets() const { return targets_; }

 private:
  rpc::ClientOptions Options(const std::string& target, absl::Duration timeout) const;

  ClusterTargets targets_;
  const std::atomic<bool>* stopping_ = nullptr;
  std::unique_ptr<v1::Learner::Stub> learner_;
  std::vector<std::unique_ptr<v1::RolloutActor::Stub>> actors_;
  std::unique_ptr<v1::RewardAggregator::Stub> reward_;
};

}  // namespace r1r::orchestrator
