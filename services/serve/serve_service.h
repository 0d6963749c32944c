// RewardModel service (r1r-serve): Compare (one pair, voting@K) and Rank (best-of-N by pairwise
// comparisons in both orders) over one loaded policy, all generation going through one batcher.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <absl/status/statusor.h>

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
  int64_t max_prompt_tokens = 16384;  // longer chat-templated prompts are refused
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

  // The work behind the RPCs, without gRPC (tests, benchmarks). `cancelled` may be null.
  absl::StatusOr<v1::CompareResponse> DoCompare(const v1::CompareRequest& req,
                                                const std::function<bool()>& cancelled = nullptr);
  absl::StatusOr<v1::RankResponse> DoRank(const v1::RankRequest& req, const std::function<bool()>& cancelled = nullptr);

  int64_t policy_version() const { return policy_version_; }
  GenerationBatcher& batcher() { return *batcher_; }
  // Stops the batcher: calls waiting for generation fail with UNAVAILABLE.
  void Stop() { batcher_->Stop(); }

 private:
  RewardModelServiceImpl(ServeOptions options, std::shared_ptr<ServeMetrics> metrics)
      : options_(std::move(options)), metrics_(std::move(metrics)) {}

  struct Judged;  // one prompt's samples, decoded and tallied
  // Generates `votes` samples for each prompt (all through one batcher call) and tallies each prompt.
  absl::StatusOr<std::vector<Judged>> Judge(const std::vector<train::EncodedPrompt>& prompts, int votes,
                                            double temperature, uint64_t seed, int max_new_tokens,
                                            const std::function<bool()>& cancelled);
  absl::StatusOr<train::EncodedPrompt> EncodePrompt(const train::PromptInput& input,
                                                    const train::EncodedPrompt* image) const;
  absl::StatusOr<std::optional<train::EncodedPrompt>> ProcessRequestImage(bool has_image,
                                                                          const v1::ImageInput& image) const;
  void CountRequest(const char* rpc, const absl::Status& status, double seconds);

  ServeOptions options_;
  std::shared_ptr<ServeMetrics> metrics_;
  std::unique_ptr<train::Policy> policy_;
  std::unique_ptr<GenerationBatcher> batcher_;
  int64_t policy_version_ = 0;
};

}  // namespace r1r::serve
