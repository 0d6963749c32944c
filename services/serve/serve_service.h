// RewardModel service (r1r-serve): Compare (one pair, voting@K) and Rank (best-of-N by pairwise
// comparisons in both orders) over one loaded policy, all generation going through one batcher.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <absl/status/statusor.h>
#include <absl/synchronization/mutex.h>
#include <absl/time/time.h>

#include "common/obs/metrics.h"
#include "common/train/policy.h"
#include "r1r/v1/serve.grpc.pb.h"
#include "services/serve/generation_batcher.h"
#include "services/serve/request_checks.h"
#include "services/serve/serve_metrics.h"

namespace r1r::serve {

struct ServeOptions {
  std::string model_dir;
  model::ModelOptions model;
  BatcherOptions batching;
  RequestLimits limits;
  int default_max_new_tokens = 512;
  bool cuda_graphs = false;  // continuous batching: decode steps replayed from CUDA graphs (cuda models)
  int64_t max_prompt_tokens = 16384;  // longer chat-templated prompts are refused
  // > 0: re-read model_dir's state.json this often and reload when its policy version went up
  // (the orchestrator publishes there); 0: only the Reload RPC swaps checkpoints.
  absl::Duration reload_poll = absl::ZeroDuration();
};

// The policy version a published checkpoint carries: state.json's "policy_version" (or "version") when
// the file exists, else 0.
absl::StatusOr<int64_t> ReadPolicyVersion(const std::string& model_dir);

class RewardModelServiceImpl final : public v1::RewardModel::Service {
 public:
  // Loads the policy from options.model_dir and starts the batcher. `metrics` may be null.
  static absl::StatusOr<std::unique_ptr<RewardModelServiceImpl>> Create(const ServeOptions& options,
                                                                        obs::Metrics* metrics);
  ~RewardModelServiceImpl() override;

  grpc::Status Compare(grpc::ServerContext* ctx, const v1::CompareRequest* req, v1::CompareResponse* resp) override;
  grpc::Status Rank(grpc::ServerContext* ctx, const v1::RankRequest* req, v1::RankResponse* resp) override;
  grpc::Status Reload(grpc::ServerContext* ctx, const v1::ReloadRequest* req, v1::ReloadResponse* resp) override;

  // The work behind the RPCs, without gRPC (tests, benchmarks). `cancelled` may be null.
  absl::StatusOr<v1::CompareResponse> DoCompare(const v1::CompareRequest& req,
                                                const std::function<bool()>& cancelled = nullptr);
  absl::StatusOr<v1::RankResponse> DoRank(const v1::RankRequest& req, const std::function<bool()>& cancelled = nullptr);
  absl::StatusOr<v1::ReloadResponse> DoReload(const v1::ReloadRequest& req);

  int64_t policy_version() const { return Current()->version; }
  GenerationBatcher& batcher() { return *batcher_; }
  // Stops the reload poller and the batcher: calls waiting for generation fail with UNAVAILABLE.
  void Stop();

 private:
  // One loaded checkpoint. Requests hold it by shared_ptr from start to end, so a reload never pulls
  // the weights or the tokenizer from under them; the last holder frees it.
  struct LoadedModel {
    std::unique_ptr<train::Policy> policy;
    int64_t version = 0;
    std::string dir;
  };
  RewardModelServiceImpl(ServeOptions options, std::shared_ptr<ServeMetrics> metrics)
      : options_(std::move(options)), metrics_(std::move(metrics)) {}
  static absl::StatusOr<std::shared_ptr<LoadedModel>> LoadModel(const std::string& dir,
                                                                const model::ModelOptions& options);
  std::shared_ptr<LoadedModel> Current() const;
  // Polls options_.model_dir every options_.reload_poll until Stop().
  void PollForNewVersions();

  struct Verdict;  // one prompt's verdict: its samples, decoded, and their votes
  // Generates `votes` samples for each prompt (all through one batcher call) and tallies each prompt.
  absl::StatusOr<std::vector<Verdict>> SampleVerdicts(LoadedModel& model,
                                                      const std::vector<train::EncodedPrompt>& prompts, int votes,
                                                      double temperature, uint64_t seed, int max_new_tokens,
                                                      const std::function<bool()>& cancelled);
  absl::StatusOr<train::EncodedPrompt> EncodePrompt(LoadedModel& model, const train::PromptInput& input,
                                                    const train::EncodedPrompt* image) const;
  absl::StatusOr<std::optional<train::EncodedPrompt>> ProcessRequestImage(LoadedModel& model, bool has_image,
                                                                          const v1::ImageInput& image) const;
  void CountRequest(const char* rpc, const absl::Status& status, double seconds);

  ServeOptions options_;
  std::shared_ptr<ServeMetrics> metrics_;
  mutable absl::Mutex model_mu_;
  std::shared_ptr<LoadedModel> model_ ABSL_GUARDED_BY(model_mu_);
  absl::Mutex reload_mu_;  // one reload at a time
  std::unique_ptr<GenerationBatcher> batcher_;
  absl::Mutex stop_mu_;
  bool stopping_ ABSL_GUARDED_BY(stop_mu_) = false;
  std::thread poller_;
};

}  // namespace r1r::serve
