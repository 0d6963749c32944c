#include "services/actor/actor_service.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <utility>

#include <absl/strings/str_cat.h>
#include <absl/strings/str_join.h>

#include "common/model/weights.h"
#include "common/obs/log.h"
#include "common/rpc/auth.h"
#include "common/rpc/handler_guard.h"
#include "common/rpc/request_limits.h"
#include "common/rpc/status.h"
#include "common/train/weight_stream.h"
#include "common/train/wire_prompt.h"
#include "r1r/v1/learner.grpc.pb.h"
#include "services/actor/actor_requests.h"

namespace r1r::actor {
namespace {

using Clock = std::chrono::steady_clock;
using rpc::Invalid;
using rpc::SecondsSince;

obs::Metrics& MetricsOrOwn(obs::Metrics* given, std::unique_ptr<obs::Metrics>* own) {
  if (given != nullptr) return *given;
  *own = std::make_unique<obs::Metrics>("actor");
  return **own;
}

v1::FinishReason ToProto(model::FinishReason r) {
  return r == model::FinishReason::kStop ? v1::FINISH_REASON_STOP : v1::FINISH_REASON_LENGTH;
}

// A received message as the weight stream's receiver reads it (views into `c`).
train::WeightChunkView ViewOf(const v1::WeightChunk& c) {
  train::WeightChunkView v;
  v.version = c.version();
  v.tensor_name = c.tensor_name();
  v.dtype = c.dtype();
  v.shape.assign(c.shape().begin(), c.shape().end());
  v.offset = c.offset();
  v.data = c.data().data();
  v.size = c.data().size();
  v.last_chunk_of_tensor = c.last_chunk_of_tensor();
  v.end_of_stream = c.end_of_stream();
  v.crc32c = c.crc32c();
  v.total_bytes = c.total_bytes();
  return v;
}

}  // namespace

ActorServiceImpl::ActorServiceImpl(ActorOptions options, obs::Metrics* metrics)
    : options_(std::move(options)), metrics_(MetricsOrOwn(metrics, &own_metrics_)) {}

ActorServiceImpl::~ActorServiceImpl() = default;

absl::Status ActorServiceImpl::PullWeights(const std::string& target, int64_t min_version, model::TensorMap* tensors,
                                           int64_t* version, int64_t* bytes) {
  rpc::ClientOptions client = options_.learner;
  client.target = target;
  auto channel = rpc::MakeChannel(client);
  if (!channel.ok()) return channel.status();
  auto stub = v1::Learner::NewStub(*channel);
  v1::StreamWeightsRequest req;
  req.set_min_version(min_version);
  req.set_chunk_bytes(train::kMaxWeightChunkBytes);  // the largest chunk: fewer messages, higher throughput
  std::optional<train::WeightStreamReceiver> receiver;
  grpc::Status s = rpc::CallWithRetry(client, options_.retry, [&](grpc::ClientContext& ctx) {
    receiver.emplace(min_version);  // a retried attempt starts over
    auto reader = stub->StreamWeights(&ctx, req);
    v1::WeightChunk chunk;
    while (reader->Read(&chunk)) receiver->Add(ViewOf(chunk));  // after a problem it only drains
    *bytes = receiver->bytes();
    return reader->Finish();
  });
  if (!s.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                        absl::StrCat("StreamWeights from ", target, ": ", s.error_message()));
  }
  auto received = receiver->Finish();  // the trailer, every tensor complete, finite weights
  if (!received.ok()) return received.status();
  *version = receiver->version();
  *tensors = *std::move(received);
  return absl::OkStatus();
}

grpc::Status ActorServiceImpl::LoadWeights(grpc::ServerContext* ctx, const v1::LoadWeightsRequest* req,
                                           v1::LoadWeightsResponse* resp) {
  return rpc::GuardHandler(ctx, "RolloutActor/LoadWeights", [&]() -> grpc::Status {
    if (auto s = rpc::Authorize(ctx); !s.ok()) return s;
    if (req->learner_target().empty() || req->learner_target().size() > 1024) {
      return Invalid("learner_target: need host:port");
    }
    // The pull sends this actor's learner token: only to a learner the operator named (--learner-targets).
    if (!IsAllowedTarget(req->learner_target(), options_.learner_targets)) {
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                          absl::StrCat("learner_target: '", req->learner_target().substr(0, 256),
                                       "' is not one of --learner-targets (", absl::StrJoin(options_.learner_targets, ","),
                                       ")"));
    }
    if (req->version() < 0) return Invalid("version: must be >= 0");
    if (req->model_dir().size() > rpc::kMaxPathBytes) return Invalid("model_dir: over 4096 bytes");
    if (!req->model_dir().empty()) {
      if (auto confined = options_.read_roots.Confine(req->model_dir(), "model_dir"); !confined.ok()) {
        return rpc::ToGrpc(confined.status());
      }
    }
    absl::MutexLock load_lock(&load_mu_);
    const auto start = Clock::now();
    model::TensorMap tensors;
    int64_t version = -1, bytes = 0;
    std::string source = "stream";
    if (options_.weight_receiver != nullptr) {
      rpc::ClientOptions learner = options_.learner;
      learner.target = req->learner_target();
      auto broadcast = options_.weight_receiver->TakeCurrent(learner, req->version());
      if (broadcast.ok()) {
        // Verified on arrival: the CRC32C and the stream receiver's finite-weights check, bucket by bucket.
        tensors = std::move(broadcast->tensors);
        version = broadcast->version;
        bytes = broadcast->bytes;
        source = "broadcast";
      } else {
        spdlog::info("weight sync: pulling the stream ({})", broadcast.status().message());
      }
    }
    if (source == "stream") {
      if (absl::Status s = PullWeights(req->learner_target(), req->version(), &tensors, &version, &bytes); !s.ok()) {
        metrics_.weight_sync_failures.Increment();
        return rpc::ToGrpc(s);
      }
    }
    const double pull_seconds = SecondsSince(start);
    // A new model directory (or the first load) builds a fresh replica off the lock.
    std::unique_ptr<train::Policy> fresh;
    {
      absl::ReaderMutexLock lock(&weights_mu_);
      const bool need_new = !policy_ || (!req->model_dir().empty() && req->model_dir() != model_dir_);
      if (need_new && req->model_dir().empty()) return Invalid("model_dir: required for the first load");
      if (need_new) {
        auto options = train::ParseModelOptions(options_.dtype, options_.device);
        if (!options.ok()) return rpc::ToGrpc(options.status());
        auto policy = train::Policy::Load(req->model_dir(), *options, /*with_weights=*/false);
        if (!policy.ok()) {
          return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                              absl::StrCat("model_dir ", req->model_dir(), ": ", policy.status().message()));
        }
        fresh = std::move(*policy);
        if (absl::Status s = model::LoadWeights(fresh->model(), tensors); !s.ok()) return rpc::ToGrpc(s);
        fresh->model().eval();
      }
    }
    {
      absl::MutexLock lock(&weights_mu_);  // waits for in-flight GenerateRollouts calls
      if (fresh) {
        policy_ = std::move(fresh);
        model_dir_ = req->model_dir();
      } else if (absl::Status s = model::LoadWeights(policy_->model(), tensors); !s.ok()) {
        return rpc::ToGrpc(s);
      }
      version_ = version;
    }
    tensors.clear();
    if (source == "broadcast") options_.weight_receiver->Release();  // the received buffer's memory
    const double seconds = SecondsSince(start);
    spdlog::info("loaded weights version={} source={} bytes={} seconds={:.3f} pull_seconds={:.3f} mb_per_second={:.0f}",
                 version, source, bytes, seconds, pull_seconds, static_cast<double>(bytes) / 1e6 / std::max(seconds, 1e-9));
    metrics_.weight_sync_seconds.Observe(seconds);
    metrics_.weight_sync_bytes.Increment(static_cast<double>(bytes));
    metrics_.policy_version.Set(static_cast<double>(version));
    resp->set_version(version);
    resp->set_bytes(bytes);
    resp->set_seconds(seconds);
    resp->set_source(source);
    return grpc::Status::OK;
  });
}

grpc::Status ActorServiceImpl::GenerateRollouts(grpc::ServerContext* ctx, const v1::GenerateRolloutsRequest* req,
                                                grpc::ServerWriter<v1::Trajectory>* writer) {
  return rpc::GuardHandler(ctx, "RolloutActor/GenerateRollouts", [&]() -> grpc::Status {
    if (auto s = rpc::Authorize(ctx); !s.ok()) return s;
    if (absl::Status s = CheckGenerateRequest(*req); !s.ok()) return rpc::ToGrpc(s);
    auto& inflight = metrics_.inflight_requests;
    inflight.Increment();
    grpc::Status s;
    {
      absl::ReaderMutexLock lock(&weights_mu_);  // the whole call sees one version
      s = Generate(ctx, *req, writer);
    }
    inflight.Decrement();
    return s;
  });
}

grpc::Status ActorServiceImpl::Generate(grpc::ServerContext* ctx, const v1::GenerateRolloutsRequest& req,
                                        grpc::ServerWriter<v1::Trajectory>* writer) {
  if (!policy_) return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "no weights loaded: call LoadWeights");
  if (req.expected_policy_version() != version_) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        absl::StrCat("expected_policy_version: ", req.expected_policy_version(),
                                     " but this actor holds version ", version_));
  }
  const auto start = Clock::now();
  const auto& sp = req.sampling();
  const int64_t vocab = policy_->model().config().text.vocab_size;
  int64_t generated = 0;
  // Every prompt is checked and encoded first; then one continuous batch of at most --max-batch
  // sequences: a finished sequence leaves and the next prompt joins between decode steps, and the
  // samples of one prompt (samples_per_prompt) share one prefill.
  std::vector<train::EncodedPrompt> encoded;
  std::vector<model::SamplingParams> sampling;
  encoded.reserve(req.prompts_size());
  for (int i = 0; i < req.prompts_size(); ++i) {
    const auto& p = req.prompts(i);
    auto e = train::EncodeWirePrompt(policy_->encoder(), WirePromptOf(p), options_.read_roots, vocab);
    if (!e.ok()) {
      const auto code = e.status().code() == absl::StatusCode::kDataLoss ? grpc::StatusCode::DATA_LOSS
                                                                          : grpc::StatusCode::INVALID_ARGUMENT;
      return grpc::Status(code, absl::StrCat("prompts[", i, "].", e.status().message()));
    }
    encoded.push_back(*std::move(e));
    sampling.push_back(SamplingFor(sp, i, p.prompt_id()));
  }
  std::vector<const train::EncodedPrompt*> ptrs;
  for (const auto& e : encoded) ptrs.push_back(&e);
  // Trajectories stream in prompt order as soon as every earlier one is done.
  std::vector<std::optional<model::GenerationResult>> done(encoded.size());
  size_t next_to_write = 0;
  bool write_failed = false;
  model::GenerateOptions go;
  go.max_batch_rows = options_.max_batch;
  go.cuda_graphs = options_.cuda_graphs;
  go.cancelled = [&] { return write_failed || ctx->IsCancelled(); };
  go.on_result = [&](size_t i, const model::GenerationResult& r) {
    done[i] = r;
    while (!write_failed && next_to_write < done.size() && done[next_to_write].has_value()) {
      const size_t k = next_to_write++;
      const model::GenerationResult& res = *done[k];
      const auto& p = req.prompts(static_cast<int>(k));
      v1::Trajectory t;
      t.set_prompt_id(p.prompt_id());
      *t.mutable_preference() = p.preference();
      for (int64_t id : encoded[k].ids) t.add_prompt_token_ids(static_cast<int32_t>(id));
      for (int64_t id : res.token_ids) t.add_response_token_ids(static_cast<int32_t>(id));
      // log softmax(logits / T) of each sampled token: what the learner recomputes teacher-forced
      // (identical to the sampled distribution at T = 1 without top-k/top-p).
      for (float lp : res.logprobs) t.add_behaviour_logprobs(lp);
      t.set_policy_version(version_);
      t.set_finish_reason(ToProto(res.finish_reason));
      t.set_response_text(policy_->Decode(res.token_ids));
      t.set_actor_id(options_.actor_id);
      generated += static_cast<int64_t>(res.token_ids.size());
      if (!writer->Write(t)) write_failed = true;
      done[k].reset();
    }
  };
  auto results = policy_->Generate(ptrs, sampling, go);
  if (write_failed) return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
  if (!results.ok()) {
    if (absl::IsCancelled(results.status())) return grpc::Status(grpc::StatusCode::CANCELLED, "client cancelled");
    return rpc::ToGrpc(results.status());
  }
  const double seconds = SecondsSince(start);
  metrics_.rollout_seconds.Observe(seconds);
  metrics_.generated_tokens.Increment(static_cast<double>(generated));
  metrics_.trajectories.Increment(req.prompts_size());
  if (seconds > 0) metrics_.tokens_per_second.Set(static_cast<double>(generated) / seconds);
  return grpc::Status::OK;
}

grpc::Status ActorServiceImpl::GetInfo(grpc::ServerContext* ctx, const v1::ActorInfoRequest*, v1::ActorInfo* resp) {
  if (auto s = rpc::Authorize(ctx); !s.ok()) return s;
  absl::ReaderMutexLock lock(&weights_mu_);
  resp->set_actor_id(options_.actor_id);
  resp->set_policy_version(version_);
  resp->set_device(options_.device);
  resp->set_parameters(policy_ ? policy_->parameter_count() : 0);
  return grpc::Status::OK;
}

}  // namespace r1r::actor
