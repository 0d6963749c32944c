// Learner: cold-start SFT steps and StableReinforce steps on one policy, checkpoints, and the
// weights stream actors pull from. Thin: the optimisation lives in common/train. Training RPCs hold
// the mutex exclusively (one step at a time); StreamWeights holds it shared for the whole stream,
// so every actor gets one consistent version straight from the parameters, several at once.
#pragma once

#include <memory>
#include <string>

#include <absl/status/status.h>
#include <absl/synchronization/mutex.h>

#include "common/config/job_spec.h"
#include "common/obs/metrics.h"
#include "common/train/policy.h"
#include "common/train/trainer.h"
#include "r1r/v1/learner.grpc.pb.h"

namespace r1r::learner {

struct LearnerOptions {
  // Sequences and padded tokens per forward/backward: memory knobs, the step does not depend on them.
  int64_t micro_batch = 8;
  int64_t micro_batch_tokens = 0;  // 0 = no token cap
};

class LearnerServiceImpl final : public v1::Learner::Service {
 public:
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

 private:
  absl::Status InitLocked(const v1::InitRequest& req) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // work_dir/model: created (tiny) or linked from model.path on first use, then loaded.
  absl::Status LoadPolicy(const config::JobSpec& spec, const std::string& work_dir) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The frozen reference for the KL term: the weights RL started from, kept in work_dir/reference.
  absl::Status LoadReference() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::string> WriteCheckpoint() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string StateJson() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status RestoreState(const std::string& json) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FillState(v1::LearnerState* out) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void RecordStep(const std::string& phase, const train::StepResult& r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const LearnerOptions options_;
  obs::Metrics* metrics_;
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
  int64_t sft_steps_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t rl_steps_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t skipped_steps_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t data_cursor_ ABSL_GUARDED_BY(mu_) = 0;
  std::string last_checkpoint_ ABSL_GUARDED_BY(mu_);
};

}  // namespace r1r::learner
