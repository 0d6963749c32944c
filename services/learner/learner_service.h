// Learner: cold-start SFT steps and StableReinforce steps on one policy, checkpoints, and the
// weights stream actors pull from. Thin: the optimisation lives in common/train. Training RPCs hold
// the mutex exclusively (one step at a time); StreamWeights holds it shared for the whole stream,
// so every actor gets one consistent version straight from the parameters, several at once.
//
// Data parallel (--dist-world-size N): rank 0 serves the training RPCs and replays each Init, SftStep and
// RlStep to ranks 1..N-1 over the process group before running it; every rank encodes the same request
// and trains on its share of the batch (train::Trainer sums the gradients), and the ranks agree after
// encoding so that one rank's bad input fails the step on all of them instead of leaving the others
// waiting in a collective (train::RankGroup). Only rank 0 writes checkpoints; any rank can stream weights.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <absl/status/status.h>
#include <absl/synchronization/mutex.h>
#include <absl/time/clock.h>
#include <absl/time/time.h>

#include "common/config/job_spec.h"
#include "common/dist/process_group.h"
#include "common/files/paths.h"
#include "common/obs/metrics.h"
#include "common/train/checkpoint_state.h"
#include "common/train/policy.h"
#include "common/train/rank_group.h"
#include "common/train/trainer.h"
#include "r1r/v1/learner.grpc.pb.h"
#include "services/learner/learner_metrics.h"
#include "services/learner/weight_publisher.h"

namespace r1r::learner {

struct LearnerOptions {
  // Sequences and padded tokens per forward/backward: memory knobs, the step does not depend on them.
  int64_t micro_batch = 8;
  int64_t micro_batch_tokens = 0;  // 0 = no token cap
  int64_t image_cache_bytes = int64_t{1} << 30;  // the processed-image LRU (--image-cache-mb)
  dist::ProcessGroup* group = nullptr;  // data-parallel ranks (owned by main); null = alone
  // Rank 0, when a collective fails: the group cannot be mended in place (c10d has no way to re-admit a
  // rank), so main stops the process and its supervisor restarts every rank into a new group.
  std::function<void(const absl::Status&)> on_group_lost;
  // Where request paths may point (docs/security.md): Init.work_dir under work_roots,
  // SaveCheckpoint.export_dir under export_roots, images and model.path under read_roots.
  files::Roots work_roots, export_roots, read_roots;
  // Rank 0 with --weight-sync-store (owned by main): every change of the weights is also broadcast to
  // the actors in the sync group. Null: actors only pull the stream.
  WeightPublisher* weight_publisher = nullptr;
};

class LearnerServiceImpl final : public v1::Learner::Service {
 public:
  // `metrics` may be null (tests): the service then keeps a registry of its own.
  LearnerServiceImpl(LearnerOptions options, obs::Metrics* metrics);
  ~LearnerServiceImpl() override;

  grpc::Status Init(grpc::ServerContext* ctx, const v1::InitRequest* req, v1::LearnerState* resp) override;
  grpc::Status SftStep(grpc::ServerContext* ctx, const v1::SftStepRequest* req, v1::StepMetrics* resp) override;
  grpc::Status RlStep(grpc::ServerContext* ctx, const v1::ExperienceBatch* req, v1::StepMetrics* resp) override;
  grpc::Status SaveCheckpoint(grpc::ServerContext* ctx, const v1::SaveCheckpointRequest* req,
                              v1::SaveCheckpointResponse* resp) override;
  grpc::Status StreamWeights(grpc::ServerContext* ctx, const v1::StreamWeightsRequest* req,
                             grpc::ServerWriter<v1::WeightChunk>* writer) override;
  grpc::Status GetState(grpc::ServerContext* ctx, const v1::GetStateRequest* req, v1::LearnerState* resp) override;

  // In a group: rank 0 starts its heartbeat (a no-op to the other ranks after `heartbeat_every` of
  // idleness); ranks > 0 start following rank 0 on a thread and call `on_follow_end` when that ends.
  void StartRankThreads(absl::Duration heartbeat_every, std::function<void(const absl::Status&)> on_follow_end);
  // The rank group, for main's shutdown (RankGroup::Shutdown).
  train::RankGroup& rank_group() { return ranks_; }

 private:
  // Rank 0's commands to the other ranks (RankGroup's own are 'Q' stop and 'H' heartbeat).
  enum Command : char { kInit = 'I', kSft = 'S', kRl = 'R', kSave = 'C' };
  bool IsFollower() const { return ranks_.is_follower(); }
  // Rank 0: passes `result` through, calling on_group_lost when it says the group broke.
  grpc::Status ReportGroupLoss(grpc::Status result);
  // Rank 0: sends the command and its request to the other ranks (no-op alone).
  absl::Status Replicate(Command command, const google::protobuf::Message& request)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(ranks_.command_mutex());
  // Ranks > 0: one of rank 0's commands.
  train::CommandOutcome FollowCommand(char command, const std::string& body);
  // FAILED_PRECONDITION unless initialised for `phase`.
  grpc::Status ReadyFor(const std::string& phase) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  grpc::Status SftStepLocked(const v1::SftStepRequest& req, v1::StepMetrics* resp) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  grpc::Status RlStepLocked(const v1::ExperienceBatch& req, v1::StepMetrics* resp) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status EncodeSftItems(const v1::SftStepRequest& req, std::vector<train::SftItem>* items)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `stale`: trajectories sampled by an older policy version (off-policy mode).
  absl::Status EncodeRlItems(const v1::ExperienceBatch& req, std::vector<train::RlItem>* items, int64_t* stale)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status InitLocked(const v1::InitRequest& req) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::string> WriteCheckpoint() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  train::CheckpointState State() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RestoreState(const train::CheckpointState& state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FillState(v1::LearnerState* out) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // After every change of the weights (Init, a step): a new weights serial, and the weights to the
  // sync group when there is one (a failed copy is logged; actors then pull the stream).
  void PublishWeights() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FillStepMetrics(const train::StepResult& r, v1::StepMetrics* resp) const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const LearnerOptions options_;
  std::unique_ptr<obs::Metrics> own_metrics_;  // when none was given
  LearnerMetrics metrics_;
  train::RankGroup ranks_;
  absl::Mutex mu_;
  bool initialised_ ABSL_GUARDED_BY(mu_) = false;
  config::JobSpec spec_ ABSL_GUARDED_BY(mu_);
  std::string job_id_ ABSL_GUARDED_BY(mu_);
  std::string work_dir_ ABSL_GUARDED_BY(mu_);
  std::string phase_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<train::Policy> policy_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<train::Policy> reference_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<train::Trainer> trainer_ ABSL_GUARDED_BY(mu_);
  train::RlStepOptions rl_options_ ABSL_GUARDED_BY(mu_);
  int64_t policy_version_ ABSL_GUARDED_BY(mu_) = 0;
  // Names the weights held now (LearnerState.weights_serial): from the start time in microseconds, so
  // it also grows across restarts, plus one per change.
  int64_t weights_serial_ ABSL_GUARDED_BY(mu_) = absl::ToUnixMicros(absl::Now());
  int64_t sft_steps_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t rl_steps_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t skipped_steps_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t data_cursor_ ABSL_GUARDED_BY(mu_) = 0;
  std::string last_checkpoint_ ABSL_GUARDED_BY(mu_);
};

}  // namespace r1r::learner
