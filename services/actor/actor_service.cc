#include "services/actor/actor_service.h"

#include <chrono>
#include <cmath>
#include <optional>
#include <set>

#include <absl/strings/str_cat.h>
#include <absl/strings/str_join.h>

#include "common/files/paths.h"
#include "common/model/weights.h"
#include "common/obs/log.h"
#include "common/rpc/auth.h"
#include "common/rpc/request_limits.h"
#include "common/rpc/status.h"
#include "common/train/weight_codec.h"
#include "r1r/v1/learner.grpc.pb.h"

namespace r1r::actor {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kMaxPrompts = rpc::kMaxPromptsPerGenerate;
constexpr int kMaxTokens = 32768;
constexpr size_t kMaxTextBytes = 64 << 10;
// An image file larger than this is refused before it is read.
constexpr uint64_t kMaxImageFileBytes = 64 << 20;
// One streamed tensor may declare at most this many bytes (the largest of a 72B model is ~2.5 GB):
// a header with a huge shape must not make the actor reserve memory for it.
constexpr int64_t kMaxTensorBytes = int64_t{8} << 30;

// Bytes a tensor of `shape` and `dtype` declares, or -1 when the shape is negative or overflows.
int64_t DeclaredBytes(const std::string& dtype, const google::protobuf::RepeatedField<int64_t>& shape) {
  int64_t n = dtype == "float32" || dtype == "int32" ? 4 : dtype == "float64" || dtype == "int64" ? 8 : 2;
  for (int64_t d : shape) {
    if (d < 0 || (d > 0 && n > kMaxTensorBytes / d)) return -1;
    n *= d;
  }
  return n;
}

// Whether `target` (host:port) is one of `allowed` ("host:port", or "host:*" for any port).
bool IsAllowedTarget(const std::string& target, const std::vector<std::string>& allowed) {
  const size_t colon = target.rfind(':');
  if (colon == std::string::npos) return false;
  for (const std::string& a : allowed) {
    if (a == target) return true;
    if (a.size() > 2 && a.substr(a.size() - 2) == ":*" && a.substr(0, a.size() - 1) == target.substr(0, colon + 1)) {
      return true;
    }
  }
  return false;
}

// OK when every floating-point tensor holds only finite values (a stream whose CRC matches can still
// carry NaN weights, which would make every rollout garbage).
absl::Status CheckFinite(const model::TensorMap& tensors) {
  for (const auto& [name, t] : tensors) {
    if (!t.is_floating_point() || t.numel() == 0) continue;
    if (!torch::isfinite(t).all().item<bool>()) {
      return absl::DataLossError(absl::StrCat("weights: tensor ", name, " holds NaN or infinite values"));
    }
  }
  return absl::OkStatus();
}

double SecondsSince(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }
grpc::Status Invalid(const std::string& msg) { return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, msg); }

uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// A request seed gives each prompt its own stream (seed, index); seed 0 ties it to the prompt id,
// so the same prompt samples the same response on any actor and in any batch.
uint64_t PromptSeed(uint64_t request_seed, int index, const std::string& prompt_id) {
  const uint64_t s = request_seed != 0 ? SplitMix64(request_seed + static_cast<uint64_t>(index)) : Fnv1a(prompt_id);
  return s == 0 ? 1 : s;
}

grpc::Status Validate(const v1::GenerateRolloutsRequest& req) {
  if (req.prompts_size() < 1 || req.prompts_size() > kMaxPrompts) {
    return Invalid(absl::StrCat("prompts: need 1..", kMaxPrompts, ", got ", req.prompts_size()));
  }
  const auto& s = req.sampling();
  if (!std::isfinite(s.temperature()) || s.temperature() < 0 || s.temperature() > 100) {
    return Invalid(absl::StrCat("sampling.temperature: need 0..100, got ", s.temperature()));
  }
  if (!std::isfinite(s.top_p()) || s.top_p() < 0 || s.top_p() > 1) {
    return Invalid(absl::StrCat("sampling.top_p: need (0, 1] (0 = 1), got ", s.top_p()));
  }
  if (s.max_new_tokens() < 1 || s.max_new_tokens() > kMaxTokens) {
    return Invalid(absl::StrCat("sampling.max_new_tokens: need 1..", kMaxTokens, ", got ", s.max_new_tokens()));
  }
  if (s.stop_token_ids_size() > 64) return Invalid("sampling.stop_token_ids: at most 64");
  std::set<std::string> ids;
  for (int i = 0; i < req.prompts_size(); ++i) {
    const auto& p = req.prompts(i);
    const std::string field = absl::StrCat("prompts[", i, "]");
    if (p.prompt_id().empty() || p.prompt_id().size() > 256) return Invalid(field + ".prompt_id: need 1..256 bytes");
    if (!ids.insert(p.prompt_id()).second) return Invalid(absl::StrCat(field, ".prompt_id: duplicate '", p.prompt_id(), "'"));
    if (p.prompt_token_ids_size() > kMaxTokens) return Invalid(absl::StrCat(field, ".prompt_token_ids: over ", kMaxTokens));
    const auto& pref = p.preference();
    if (pref.question().size() > kMaxTextBytes || pref.response1().size() > kMaxTextBytes ||
        pref.response2().size() > kMaxTextBytes) {
      return Invalid(field + ".preference: question and responses must be <= 64 KiB each");
    }
    const std::string& sha = pref.sample().image_sha256();
    if (!sha.empty() && (sha.size() != 64 || sha.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)) {
      return Invalid(field + ".preference.sample.image_sha256: need 64 hex digits or empty");
    }
    if (p.prompt_token_ids_size() == 0 && pref.question().empty()) {
      return Invalid(field + ": needs prompt_token_ids or preference.question");
    }
  }
  return grpc::Status::OK;
}

// The prompt as the model sees it: rendered from the preference, or the caller's ids plus the
// sample's image (its <|image_pad|> run must already be in the ids).
absl::StatusOr<train::EncodedPrompt> EncodePrompt(train::Policy& policy, const v1::Prompt& p, int64_t vocab,
                                                  const files::Roots& roots) {
  const auto& pref = p.preference();
  std::string image = train::ResolveImagePath(pref.sample().dataset(), pref.sample().image_path());
  if (!image.empty()) {
    // Under --data-root/--work-root, a regular file of bounded size; its resolved spelling is the
    // image cache's key, so different spellings of one file are one entry.
    auto confined = roots.Confine(image, "preference.sample.image_path");
    if (!confined.ok()) return confined.status();
    if (absl::Status s = files::CheckRegularFile(*confined, kMaxImageFileBytes); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("preference.sample.image_path: ", s.message()));
    }
    image = *confined;
    if (absl::Status s = policy.encoder().VerifyImage(image, pref.sample().image_sha256()); !s.ok()) return s;
  }
  if (p.prompt_token_ids_size() == 0) {
    return policy.encoder().Encode({pref.question(), pref.response1(), pref.response2(), image});
  }
  train::EncodedPrompt out;
  if (!image.empty()) {
    auto pixels = policy.encoder().LoadImage(image);
    if (!pixels.ok()) return pixels.status();
    out = std::move(*pixels);
  }
  out.ids.clear();
  for (int32_t id : p.prompt_token_ids()) {
    if (id < 0 || id >= vocab) return absl::InvalidArgumentError(absl::StrCat("prompt_token_ids: id ", id, " out of range"));
    out.ids.push_back(id);
  }
  return out;
}

v1::FinishReason ToProto(model::FinishReason r) {
  return r == model::FinishReason::kStop ? v1::FINISH_REASON_STOP : v1::FINISH_REASON_LENGTH;
}

}  // namespace

ActorServiceImpl::ActorServiceImpl(ActorOptions options, obs::Metrics* metrics)
    : options_(std::move(options)), metrics_(metrics) {
  metrics_->Gauge("r1r_actor_policy_version", "Policy version the actor holds (-1 = none).").Set(-1);
  // At 0 from the start, so that dashboards show 0 rather than no data before the first event.
  metrics_->Counter("r1r_actor_weight_sync_failures_total", "Weight pulls that failed.");
  metrics_->Counter("r1r_actor_weight_sync_bytes_total", "Weight bytes pulled from the learner.");
  metrics_->Gauge("r1r_actor_inflight_requests", "GenerateRollouts calls in progress.");
  metrics_->Counter("r1r_actor_generated_tokens_total", "Response tokens generated.");
  metrics_->Counter("r1r_actor_trajectories_total", "Trajectories generated.");
}

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
  req.set_chunk_bytes(4 << 20);  // the largest chunk: fewer messages, higher throughput
  std::optional<train::TensorAssembler> assembler;
  absl::Status integrity;
  grpc::Status s = rpc::CallWithRetry(client, options_.retry, [&](grpc::ClientContext& ctx) {
    assembler.emplace();  // a retried attempt starts over
    integrity = absl::OkStatus();
    uint32_t crc = 0;
    int64_t total = 0;
    bool ended = false;
    std::string current;
    auto reader = stub->StreamWeights(&ctx, req);
    v1::WeightChunk chunk;
    while (reader->Read(&chunk)) {
      if (!integrity.ok() || ended) continue;  // drain; the first problem is reported
      if (chunk.end_of_stream()) {
        ended = true;
        if (chunk.total_bytes() != total) {
          integrity = absl::DataLossError(absl::StrCat("weight stream: ", total, " bytes received, trailer says ",
                                                       chunk.total_bytes()));
        } else if (chunk.crc32c() != crc) {
          integrity = absl::DataLossError(absl::StrCat("weight stream: crc32c mismatch (received ", crc,
                                                       ", trailer says ", chunk.crc32c(), ")"));
        }
        continue;
      }
      if (chunk.version() < min_version) {
        integrity = absl::FailedPreconditionError(absl::StrCat("learner sent version ", chunk.version()));
        continue;
      }
      *version = chunk.version();
      if (chunk.tensor_name() != current) {
        current = chunk.tensor_name();
        if (const int64_t declared = DeclaredBytes(chunk.dtype(), chunk.shape());
            declared < 0 || declared > kMaxTensorBytes) {
          integrity = absl::DataLossError(absl::StrCat("weight stream: tensor ", current.substr(0, 256),
                                                       " declares a shape over ", kMaxTensorBytes, " bytes"));
          continue;
        }
        integrity = assembler->Begin(current, chunk.dtype(), {chunk.shape().begin(), chunk.shape().end()});
        if (!integrity.ok()) continue;
      }
      integrity = assembler->Append(chunk.offset(), chunk.data().data(), chunk.data().size());
      crc = train::Crc32c(crc, chunk.data().data(), chunk.data().size());
      total += static_cast<int64_t>(chunk.data().size());
    }
    grpc::Status finish = reader->Finish();
    if (finish.ok() && integrity.ok() && !ended) {
      integrity = absl::DataLossError("weight stream ended without its trailer");
    }
    *bytes = total;
    return finish;
  });
  if (!s.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                        absl::StrCat("StreamWeights from ", target, ": ", s.error_message()));
  }
  if (!integrity.ok()) return integrity;
  auto assembled = assembler->Finish();
  if (!assembled.ok()) return assembled.status();
  *tensors = std::move(*assembled);
  return absl::OkStatus();
}

grpc::Status ActorServiceImpl::LoadWeights(grpc::ServerContext* ctx, const v1::LoadWeightsRequest* req,
                                           v1::LoadWeightsResponse* resp) {
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
  if (req->model_dir().size() > 4096) return Invalid("model_dir: over 4096 bytes");
  if (!req->model_dir().empty()) {
    if (auto confined = options_.read_roots.Confine(req->model_dir(), "model_dir"); !confined.ok()) {
      return rpc::ToGrpc(confined.status());
    }
  }
  absl::MutexLock load_lock(&load_mu_);
  const auto start = Clock::now();
  model::TensorMap tensors;
  int64_t version = -1, bytes = 0;
  double pull_seconds = 0;
  if (absl::Status s = PullWeights(req->learner_target(), req->version(), &tensors, &version, &bytes); !s.ok()) {
    metrics_->Counter("r1r_actor_weight_sync_failures_total", "Weight pulls that failed.").Increment();
    return rpc::ToGrpc(s);
  }
  if (absl::Status s = CheckFinite(tensors); !s.ok()) {
    metrics_->Counter("r1r_actor_weight_sync_failures_total", "Weight pulls that failed.").Increment();
    return rpc::ToGrpc(s);
  }
  pull_seconds = SecondsSince(start);
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
  const double seconds = SecondsSince(start);
  spdlog::info("loaded weights version={} bytes={} seconds={:.3f} pull_seconds={:.3f} mb_per_second={:.0f}", version,
               bytes, seconds, pull_seconds, static_cast<double>(bytes) / 1e6 / std::max(seconds, 1e-9));
  metrics_->Histogram("r1r_actor_weight_sync_seconds", "Time to pull and load one weights version in seconds.")
      .Observe(seconds);
  metrics_->Counter("r1r_actor_weight_sync_bytes_total", "Weight bytes pulled from the learner.")
      .Increment(static_cast<double>(bytes));
  metrics_->Gauge("r1r_actor_policy_version", "Policy version the actor holds (-1 = none).")
      .Set(static_cast<double>(version));
  resp->set_version(version);
  resp->set_bytes(bytes);
  resp->set_seconds(seconds);
  return grpc::Status::OK;
}

grpc::Status ActorServiceImpl::GenerateRollouts(grpc::ServerContext* ctx, const v1::GenerateRolloutsRequest* req,
                                                grpc::ServerWriter<v1::Trajectory>* writer) {
  if (auto s = rpc::Authorize(ctx); !s.ok()) return s;
  if (auto s = Validate(*req); !s.ok()) return s;
  auto& inflight = metrics_->Gauge("r1r_actor_inflight_requests", "GenerateRollouts calls in progress.");
  inflight.Increment();
  grpc::Status s;
  {
    absl::ReaderMutexLock lock(&weights_mu_);  // the whole call sees one version
    s = Generate(ctx, *req, writer);
  }
  inflight.Decrement();
  return s;
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
    auto e = EncodePrompt(*policy_, p, vocab, options_.read_roots);
    if (!e.ok()) {
      const auto code = e.status().code() == absl::StatusCode::kDataLoss ? grpc::StatusCode::DATA_LOSS
                                                                          : grpc::StatusCode::INVALID_ARGUMENT;
      return grpc::Status(code, absl::StrCat("prompts[", i, "]: ", e.status().message()));
    }
    encoded.push_back(std::move(*e));
    model::SamplingParams s;
    s.temperature = sp.temperature();
    s.top_p = sp.top_p() == 0 ? 1.0 : sp.top_p();
    s.top_k = sp.top_k() > 0 ? sp.top_k() : 0;
    s.max_new_tokens = sp.max_new_tokens();
    s.seed = PromptSeed(sp.seed(), i, p.prompt_id());
    s.stop_token_ids.assign(sp.stop_token_ids().begin(), sp.stop_token_ids().end());
    sampling.push_back(std::move(s));
  }
  std::vector<const train::EncodedPrompt*> ptrs;
  for (const auto& e : encoded) ptrs.push_back(&e);
  // Trajectories stream in prompt order as soon as every earlier one is done.
  std::vector<std::optional<model::GenerationResult>> done(encoded.size());
  size_t next_to_write = 0;
  bool write_failed = false;
  model::GenerateOptions go;
  go.max_batch_rows = options_.max_batch;
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
  metrics_->Histogram("r1r_actor_rollout_seconds", "Wall time of one GenerateRollouts call in seconds.").Observe(seconds);
  metrics_->Counter("r1r_actor_generated_tokens_total", "Response tokens generated.")
      .Increment(static_cast<double>(generated));
  metrics_->Counter("r1r_actor_trajectories_total", "Trajectories generated.").Increment(req.prompts_size());
  if (seconds > 0) {
    metrics_->Gauge("r1r_actor_tokens_per_second", "Generated tokens per second in the last call.")
        .Set(static_cast<double>(generated) / seconds);
  }
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
