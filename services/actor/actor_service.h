// RolloutActor: one policy replica of one version. GenerateRollouts samples responses under a
// shared lock on the weights (a call never mixes versions); LoadWeights pulls a version from the
// learner's chunked stream without blocking generation, then swaps it in under the exclusive lock.
#pragma once

#include <memory>
#include <string>

#include <absl/synchronization/mutex.h>

#include "common/files/paths.h"
#include "common/model/safetensors.h"
#include "common/obs/metrics.h"
#include "common/rpc/client.h"
#include "common/train/policy.h"
#include "r1r/v1/actor.grpc.pb.h"
#include "services/actor/actor_metrics.h"
#include "services/actor/weight_receiver.h"

namespace r1r::actor {

struct ActorOptions {
  std::string actor_id = "actor-0";
  int64_t max_batch = 16;          // prompts per generation batch
  std::string dtype = "float32";   // float32 | bfloat16
  std::string device = "cpu";      // cpu | cuda | cuda:N
  bool cuda_graphs = false;        // decode steps replayed from CUDA graphs (a cuda device only)
  rpc::ClientOptions learner;      // token/TLS/deadline for the weight pull; target comes per request
  rpc::RetryPolicy retry;
  // LoadWeights pulls (and sends the learner token) only from these: "host:port" or "host:*".
  std::vector<std::string> learner_targets;
  // Images and model_dir named in requests must lie under these (docs/security.md).
  files::Roots read_roots;
  // With --weight-sync-store (owned by main): LoadWeights takes the weights the learner broadcast to
  // its sync group when they are here in time, and pulls the stream otherwise. Null: always the stream.
  WeightReceiver* weight_receiver = nullptr;
};

class ActorServiceImpl final : public v1::RolloutActor::Service {
 public:
  // `metrics` may be null (tests): the service then keeps a registry of its own.
  ActorServiceImpl(ActorOptions options, obs::Metrics* metrics);
  ~ActorServiceImpl() override;

  grpc::Status GenerateRollouts(grpc::ServerContext* ctx, const v1::GenerateRolloutsRequest* req,
                                grpc::ServerWriter<v1::Trajectory>* writer) override;
  grpc::Status LoadWeights(grpc::ServerContext* ctx, const v1::LoadWeightsRequest* req,
                           v1::LoadWeightsResponse* resp) override;
  grpc::Status GetInfo(grpc::ServerContext* ctx, const v1::ActorInfoRequest* req, v1::ActorInfo* resp) override;

 private:
  // Pulls every tensor of one version (train::WeightStreamReceiver checks headers, offsets, the
  // byte count, the CRC32C and that the weights are finite).
  absl::Status PullWeights(const std::string& target, int64_t min_version, model::TensorMap* tensors,
                           int64_t* version, int64_t* bytes);
  grpc::Status Generate(grpc::ServerContext* ctx, const v1::GenerateRolloutsRequest& req,
                        grpc::ServerWriter<v1::Trajectory>* writer) ABSL_SHARED_LOCKS_REQUIRED(weights_mu_);

  const ActorOptions options_;
  std::unique_ptr<obs::Metrics> own_metrics_;  // when none was given
  ActorMetrics metrics_;
  absl::Mutex load_mu_;  // one LoadWeights at a time (the pull runs outside weights_mu_)
  absl::Mutex weights_mu_;
  std::unique_ptr<train::Policy> policy_ ABSL_GUARDED_BY(weights_mu_);
  std::string model_dir_ ABSL_GUARDED_BY(weights_mu_);
  int64_t version_ ABSL_GUARDED_BY(weights_mu_) = -1;
};

}  // namespace r1r::actor
