#include "services/learner/learner_service.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <absl/strings/str_cat.h>
#include <nlohmann/json.hpp>

#include "common/files/paths.h"
#include "common/model/weights.h"
#include "common/obs/log.h"
#include "common/rpc/auth.h"
#include "common/rpc/status.h"
#include "common/train/checkpoint.h"
#include "common/train/weight_codec.h"
#include "services/learner/spec_options.h"

namespace r1r::learner {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kMaxExamples = 4096;
constexpr size_t kMaxTextBytes = 64 << 10;
constexpr int kMaxTokens = 32768;
constexpr int kDefaultChunkBytes = 1 << 20;
constexpr int kMinChunkBytes = 64 << 10;
constexpr int kMaxChunkBytes = 4 << 20;
// An image file larger than this is refused before it is read (the decoder has its own pixel limits).
constexpr uint64_t kMaxImageFileBytes = 64 << 20;

double SecondsSince(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

grpc::Status Invalid(const std::string& msg) { return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, msg); }
grpc::Status Precondition(const std::string& msg) {
  return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, msg);
}

grpc::Status ValidatePreference(const v1::PreferencePrompt& p, const std::string& field, bool need_label) {
  for (const auto& [name, text] : {std::pair<const char*, const std::string*>{"question", &p.question()},
                                   {"response1", &p.response1()},
                                   {"response2", &p.response2()}}) {
    if (text->size() > kMaxTextBytes) return Invalid(absl::StrCat(field, ".", name, ": over 64 KiB"));
  }
  if (p.sample().image_path().size() > 4096) return Invalid(absl::StrCat(field, ".sample.image_path: over 4096 bytes"));
  const std::string& sha = p.sample().image_sha256();
  if (!sha.empty() && (sha.size() != 64 || sha.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)) {
    return Invalid(absl::StrCat(field, ".sample.image_sha256: need 64 hex digits or empty"));
  }
  if (need_label && p.label() != 1 && p.label() != 2) {
    return Invalid(absl::StrCat(field, ".label: must be 1 or 2, got ", p.label()));
  }
  return grpc::Status::OK;
}

train::PromptInput InputOf(const v1::PreferencePrompt& p) {
  return {p.question(), p.response1(), p.response2(),
          train::ResolveImagePath(p.sample().dataset(), p.sample().image_path())};
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// model.path files into work_dir/model: small files are copied (a tokenizer.json already written by
// data prep wins), weights are symlinked.
absl::Status LinkModelFiles(const std::string& from, const std::string& to) {
  std::error_code ec;
  if (!fs::is_directory(from)) return absl::InvalidArgumentError(absl::StrCat("model.path: no directory ", from));
  for (const auto& entry : fs::directory_iterator(from, ec)) {
    const std::string name = entry.path().filename().string();
    const fs::path target = fs::path(to) / name;
    if (fs::exists(target)) continue;
    if (!entry.is_regular_file(ec)) continue;  // a FIFO or device named *.json would block the copy
    const bool weights = name.ends_with(".safetensors") || name.ends_with(".safetensors.index.json");
    if (weights) {
      fs::create_symlink(fs::absolute(entry.path()), target, ec);
    } else if (name.ends_with(".json") || name.ends_with(".txt") || name.ends_with(".jinja")) {
      fs::copy_file(entry.path(), target, ec);
    }
    if (ec) return absl::InternalError(absl::StrCat("linking ", name, " into ", to, ": ", ec.message()));
  }
  return ec ? absl::InternalError(absl::StrCat("listing ", from, ": ", ec.message())) : absl::OkStatus();
}

grpc::Status NotRankZero(const dist::ProcessGroup& group) {
  return Precondition(absl::StrCat("this learner is rank ", group.rank(), " of ", group.world_size(),
                                   " and follows rank 0: send training calls to rank 0"));
}

}  // namespace

LearnerServiceImpl::LearnerServiceImpl(LearnerOptions options, obs::Metrics* metrics)
    : options_(options), metrics_(metrics) {
  // At 0 from start-up: a rate() needs a sample before the first checkpoint, or a short job leaves it empty.
  if (metrics_ == nullptr) return;
  metrics_->Histogram("r1r_learner_checkpoint_seconds", "Time to write a training checkpoint in seconds.");
  for (const char* phase : {"sft", "rl"}) {
    metrics_->Histogram("r1r_learner_step_seconds", "Wall time of one learner step in seconds.", {{"phase", phase}});
    for (const char* part : {"forward", "backward", "optimizer"}) {
      metrics_->Histogram("r1r_learner_step_part_seconds", "Learner step time by part in seconds.",
                          {{"phase", phase}, {"part", part}});
    }
  }
}

LearnerServiceImpl::~LearnerServiceImpl() = default;

absl::Status LearnerServiceImpl::CheckImage(std::string* path, const std::string& field) const {
  if (path->empty()) return absl::OkStatus();
  auto confined = options_.read_roots.Confine(*path, field);
  if (!confined.ok()) return confined.status();
  if (absl::Status s = files::CheckRegularFile(*confined, kMaxImageFileBytes); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(field, ": ", s.message()));
  }
  *path = *confined;
  return absl::OkStatus();
}

absl::Status LearnerServiceImpl::LoadPolicy(const config::JobSpec& spec, const std::string& work_dir) {
  // The learner's weights: float32 (fp32, the master itself) or bfloat16 under an fp32 master (bf16_mixed).
  auto model_options = train::ParseModelOptions(LearnerDtype(spec), spec.model.device);
  if (!model_options.ok()) return absl::Status(model_options.status().code(),
                                               absl::StrCat("model: ", model_options.status().message()));
  const std::string model_dir = (fs::path(work_dir) / "model").string();
  std::error_code ec;
  fs::create_directories(model_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("mkdir ", model_dir, ": ", ec.message()));
  const bool configured = fs::exists(fs::path(model_dir) / "config.json");
  absl::StatusOr<std::unique_ptr<train::Policy>> policy;
  if (spec.model.init == "tiny" && !configured) {
    if (!fs::exists(fs::path(model_dir) / "tokenizer.json")) {
      return absl::FailedPreconditionError(
          absl::StrCat("model.init tiny: ", model_dir, "/tokenizer.json is missing (data prep writes it)"));
    }
    policy = train::Policy::CreateTiny(model_dir, TinyOptionsFromSpec(spec.model.tiny),
                                       ImageOptionsFromSpec(spec.data), *model_options,
                                       static_cast<uint64_t>(spec.data.seed));
  } else {
    if (spec.model.init == "path" && !configured) {
      if (absl::Status s = LinkModelFiles(spec.model.path, model_dir); !s.ok()) return s;
    }
    // The spec's pixel limits, not the checkpoint's, for this model and every one published from it.
    if (absl::Status s = train::ApplyPixelLimits(model_dir, spec.data.min_pixels, spec.data.max_pixels); !s.ok()) {
      return s;
    }
    policy = train::Policy::Load(model_dir, *model_options);
  }
  if (!policy.ok()) return policy.status();
  policy_ = std::move(*policy);
  policy_->encoder().set_image_cache_limit(options_.image_cache_bytes);
  policy_->SetVisionTrainable(!spec.model.freeze_vision);
  reference_.reset();
  return absl::OkStatus();
}

absl::Status LearnerServiceImpl::LoadReference() {
  const std::string dir = (fs::path(work_dir_) / "reference").string();
  if (!fs::exists(fs::path(dir) / "config.json")) {
    if (absl::Status s = files::CheckReplaceable(dir, "work_dir/reference"); !s.ok()) return s;
    if (absl::Status s = train::ExportModelDir(*policy_, dir); !s.ok()) return s;
    if (absl::Status s = files::MarkOwned(dir, "r1r-learner (KL reference)"); !s.ok()) return s;
  }
  auto reference = train::Policy::Load(dir, policy_->model().options());
  if (!reference.ok()) return reference.status();
  reference_ = std::move(*reference);
  reference_->model().eval();
  for (auto& p : reference_->model().parameters()) p.set_requires_grad(false);
  return absl::OkStatus();
}

std::string LearnerServiceImpl::StateJson() const {
  nlohmann::json j = {{"job_id", job_id_},
                      {"phase", phase_},
                      {"policy_version", policy_version_},
                      {"sft_steps", sft_steps_},
                      {"rl_steps", rl_steps_},
                      {"skipped_steps", skipped_steps_},
                      {"data_cursor", data_cursor_},
                      {"optimizer_steps", trainer_ ? trainer_->steps_done() : 0}};
  return j.dump(2);
}

absl::Status LearnerServiceImpl::RestoreState(const std::string& text) {
  try {
    const auto j = nlohmann::json::parse(text);
    policy_version_ = j.at("policy_version").get<int64_t>();
    sft_steps_ = j.at("sft_steps").get<int64_t>();
    rl_steps_ = j.at("rl_steps").get<int64_t>();
    skipped_steps_ = j.value("skipped_steps", int64_t{0});
    data_cursor_ = j.value("data_cursor", int64_t{0});
    // The schedule continues only within the phase it was written in.
    if (trainer_ && j.value("phase", std::string()) == phase_) {
      trainer_->set_steps_done(j.value("optimizer_steps", int64_t{0}));
    }
  } catch (const nlohmann::json::exception& e) {
    return absl::DataLossError(absl::StrCat("state.json: ", e.what()));
  }
  return absl::OkStatus();
}

absl::Status LearnerServiceImpl::InitLocked(const v1::InitRequest& req) {
  auto spec = config::ParseJobSpec(req.spec_yaml());
  if (!spec.ok()) return absl::InvalidArgumentError(absl::StrCat("spec_yaml: ", spec.status().message()));
  if (auto confined = options_.work_roots.Confine(req.work_dir(), "work_dir"); !confined.ok()) return confined.status();
  if (spec->model.init == "path") {
    auto model_path = options_.read_roots.Confine(spec->model.path, "model.path");
    if (!model_path.ok()) return model_path.status();
    spec->model.path = *model_path;
  }
  const std::string& phase = req.phase();
  const bool reload = !policy_ || req.work_dir() != work_dir_ || req.job_id() != job_id_ ||
                      spec->model.dtype != spec_.model.dtype || spec->model.device != spec_.model.device ||
                      LearnerDtype(*spec) != LearnerDtype(spec_);
  if (reload) {
    initialised_ = false;
    trainer_.reset();
    if (absl::Status s = LoadPolicy(*spec, req.work_dir()); !s.ok()) return s;
    policy_version_ = sft_steps_ = rl_steps_ = skipped_steps_ = data_cursor_ = 0;
    last_checkpoint_.clear();
  }
  spec_ = *spec;
  job_id_ = req.job_id();
  work_dir_ = req.work_dir();
  phase_ = phase;
  if (phase == "rl") {
    auto rl = RlOptionsFromSpec(spec_.rl);
    if (!rl.ok()) return rl.status();
    rl_options_ = *rl;
  }
  // Resume: weights and counters first (the reference below may be made from them), the optimizer
  // once the trainer exists, and only when the checkpoint was written in this phase.
  std::string resumed_dir, resumed_phase;
  if (req.resume()) {
    auto dir = train::LatestCheckpoint((fs::path(work_dir_) / "checkpoints").string());
    if (dir.ok()) {
      auto state_text = train::LoadTrainingCheckpoint(*dir, *policy_, nullptr);
      if (!state_text.ok()) return state_text.status();
      trainer_.reset();
      if (absl::Status s = RestoreState(*state_text); !s.ok()) return s;
      resumed_dir = last_checkpoint_ = *dir;
      resumed_phase = nlohmann::json::parse(*state_text, nullptr, false).value("phase", std::string());
    } else if (dir.status().code() != absl::StatusCode::kNotFound) {
      return dir.status();
    }
  }
  reference_.reset();
  if (phase == "rl" && spec_.rl.kl_coef > 0) {
    if (absl::Status s = LoadReference(); !s.ok()) return s;
  }
  const config::OptimSpec& optim = phase == "sft" ? spec_.sft.optim : spec_.rl.optim;
  // A new phase (or a re-Init) gets a fresh optimizer and schedule.
  trainer_ = std::make_unique<train::Trainer>(
      policy_.get(), reference_.get(),
      LearnerOptimizerOptions(spec_, optim, req.total_steps(), options_.micro_batch, options_.micro_batch_tokens));
  trainer_->set_process_group(options_.group);
  if (!resumed_dir.empty() && resumed_phase == phase_) {
    if (absl::Status s = trainer_->LoadOptimizerState(resumed_dir); !s.ok()) return s;
    auto state_text = ReadFile(resumed_dir + "/state.json");
    if (!state_text.ok()) return state_text.status();
    if (absl::Status s = RestoreState(*state_text); !s.ok()) return s;  // now also the schedule position
  }
  initialised_ = true;
  metrics_->Gauge("r1r_learner_policy_version", "Policy version the learner holds.").Set(policy_version_);
  metrics_->Gauge("r1r_learner_parameters", "Trainable parameters of the policy.").Set(policy_->parameter_count());
  return absl::OkStatus();
}

grpc::Status LearnerServiceImpl::Init(grpc::ServerContext* ctx, const v1::InitRequest* req, v1::LearnerState* resp) {
  if (auto s = rpc::Authorize(ctx); !s.ok()) return s;
  if (req->job_id().empty() || req->job_id().size() > 256) return Invalid("job_id: need 1..256 bytes");
  if (req->work_dir().empty()) return Invalid("work_dir: required");
  if (req->phase() != "sft" && req->phase() != "rl") {
    return Invalid(absl::StrCat("phase: must be sft or rl, got '", req->phase(), "'"));
  }
  if (req->total_steps() < 0) return Invalid("total_steps: must be >= 0");
  absl::MutexLock lock(&mu_);
  if (IsFollower()) return NotRankZero(*options_.group);
  if (absl::Status s = InitLocked(*req); !s.ok()) return rpc::ToGrpc(s);
  // The other ranks load what this one just created or linked (the model folder, the reference).
  absl::MutexLock group(&group_mu_);
  absl::Status replicated = Replicate(Command::kInit, *req);
  if (replicated.ok()) replicated = Agree(absl::OkStatus());
  if (!replicated.ok()) {
    initialised_ = false;
    return ReportGroupLoss(rpc::ToGrpc(replicated));
  }
  FillState(resp);
  return grpc::Status::OK;
}

grpc::Status LearnerServiceImpl::ReadyFor(const std::string& phase) const {
  if (!initialised_) return Precondition("learner not initialised: call Init first");
  if (phase_ != phase) {
    return Precondition(absl::StrCat(phase == "sft" ? "SftStep" : "RlStep", " in phase '", phase_, "': Init with phase ",
                                     phase));
  }
  return grpc::Status::OK;
}

grpc::Status LearnerServiceImpl::ReportGroupLoss(grpc::Status result) {
  const bool grouped = options_.group != nullptr && options_.group->world_size() > 1;
  if (grouped && result.error_code() == grpc::StatusCode::UNAVAILABLE && options_.on_group_lost) {
    options_.on_group_lost(absl::UnavailableError(result.error_message()));
  }
  return result;
}

absl::Status LearnerServiceImpl::Replicate(Command command, const google::protobuf::Message& request) {
  if (options_.group == nullptr || options_.group->world_size() == 1) return absl::OkStatus();
  last_command_ = absl::Now();
  std::string message(1, static_cast<char>(command));
  if (!request.AppendToString(&message)) return absl::InternalError("cannot serialise the request for the ranks");
  return options_.group->BroadcastBytes(&message, 0);
}

absl::Status LearnerServiceImpl::Agree(const absl::Status& local) {
  if (options_.group == nullptr || options_.group->world_size() == 1) return local;
  auto failed = options_.group->SumOverRanks(local.ok() ? 0 : 1);
  if (!failed.ok()) return failed.status();
  if (!local.ok()) return local;
  if (*failed > 0) {
    return absl::InternalError(absl::StrCat(*failed, " of ", options_.group->world_size(),
                                            " learner ranks failed this call; their logs say why"));
  }
  return absl::OkStatus();
}

absl::Status LearnerServiceImpl::FollowRankZero() {
  following_ = true;
  struct Done {
    std::atomic<bool>* flag;
    ~Done() { *flag = false; }
  } done{&following_};
  spdlog::info("rank {} of {} follows rank 0", options_.group->rank(), options_.group->world_size());
  while (true) {
    std::string message;
    if (absl::Status s = options_.group->BroadcastBytes(&message, 0); !s.ok()) return s;
    if (message.empty()) return absl::DataLossError("empty command from rank 0");
    const auto command = static_cast<Command>(message[0]);
    const std::string body = message.substr(1);
    absl::MutexLock lock(&mu_);
    absl::Status status;
    switch (command) {
      case Command::kStop:
        return absl::OkStatus();
      case Command::kHeartbeat:
        continue;
      case Command::kInit: {
        v1::InitRequest req;
        absl::Status local = req.ParseFromString(body) ? InitLocked(req) : absl::DataLossError("bad Init from rank 0");
        if (!local.ok()) initialised_ = false;
        status = Agree(local);
        break;
      }
      case Command::kSft: {
        v1::SftStepRequest req;
        v1::StepMetrics ignored;
        if (!req.ParseFromString(body)) return absl::DataLossError("bad SftStep from rank 0");
        status = rpc::FromGrpc(SftStepLocked(req, &ignored));
        break;
      }
      case Command::kSave: {
        v1::SaveCheckpointRequest req;
        if (!req.ParseFromString(body)) return absl::DataLossError("bad SaveCheckpoint from rank 0");
        data_cursor_ = req.data_cursor();
        status = initialised_ && trainer_ ? WriteCheckpoint().status()
                                          : absl::FailedPreconditionError("SaveCheckpoint before Init");
        break;
      }
      case Command::kRl: {
        v1::ExperienceBatch req;
        v1::StepMetrics ignored;
        if (!req.ParseFromString(body)) return absl::DataLossError("bad RlStep from rank 0");
        status = rpc::FromGrpc(RlStepLocked(req, &ignored));
        break;
      }
      default:
        return absl::DataLossError(absl::StrCat("unknown command '", message.substr(0, 1), "' from rank 0"));
    }
    if (!status.ok()) spdlog::error("rank {}: {}", options_.group->rank(), status.ToString());
    // A broken group (rank 0 gone, a timeout) ends following; a failed step does not.
    if (status.code() == absl::StatusCode::kUnavailable) return status;
  }
}

absl::Status LearnerServiceImpl::HeartbeatIfIdle(absl::Duration idle) {
  if (options_.group == nullptr || IsFollower() || options_.group->world_size() == 1) return absl::OkStatus();
  absl::MutexLock group(&group_mu_);  // not mu_: rank 0's own work (loading, exporting) goes on meanwhile
  if (absl::Now() - last_command_ < idle) return absl::OkStatus();
  absl::Status s = Replicate(Command::kHeartbeat, v1::GetStateRequest());
  if (!s.ok() && options_.on_group_lost) options_.on_group_lost(s);
  return s;
}

absl::Status LearnerServiceImpl::StopFollowers() {
  if (options_.group == nullptr || IsFollower() || options_.group->world_size() == 1) return absl::OkStatus();
  std::string message(1, static_cast<char>(Command::kStop));
  return options_.group->BroadcastBytes(&message, 0);
}

void LearnerServiceImpl::FillState(v1::LearnerState* out) const {
  out->set_job_id(job_id_);
  out->set_policy_version(policy_version_);
  out->set_sft_steps(sft_steps_);
  out->set_rl_steps(rl_steps_);
  out->set_phase(phase_);
  out->set_skipped_steps(skipped_steps_);
  out->set_last_checkpoint(last_checkpoint_);
  out->set_data_cursor(data_cursor_);
  out->set_model_dir(policy_ ? policy_->model_dir() : "");
}

void LearnerServiceImpl::RecordStep(const std::string& phase, const train::StepResult& r) {
  // Every rank trains the same step: only rank 0 counts it, so sums over scraped pods stay right.
  if (IsFollower()) return;
  const prometheus::Labels labels = {{"phase", phase}};
  metrics_->Histogram("r1r_learner_step_seconds", "Wall time of one learner step in seconds.", labels)
      .Observe(r.seconds);
  for (const char* part : {"forward", "backward", "optimizer"}) {
    auto it = r.metrics.find(absl::StrCat(part, "_seconds"));
    if (it == r.metrics.end()) continue;
    metrics_->Histogram("r1r_learner_step_part_seconds", "Learner step time by part in seconds.",
                        {{"phase", phase}, {"part", part}})
        .Observe(it->second);
  }
  if (std::isfinite(r.loss)) metrics_->Gauge("r1r_learner_loss", "Loss of the last step.", labels).Set(r.loss);
  metrics_->Gauge("r1r_learner_image_cache_bytes", "Pixel bytes held by the processed-image LRU cache.")
      .Set(static_cast<double>(policy_->encoder().image_cache_bytes()));
  metrics_->Gauge("r1r_learner_image_cache_evictions", "Images evicted from the processed-image cache so far.")
      .Set(static_cast<double>(policy_->encoder().image_cache_evictions()));
  metrics_->Gauge("r1r_learner_grad_norm", "Gradient norm (before clipping) of the last step.", labels).Set(r.grad_norm);
  metrics_->Gauge("r1r_learner_learning_rate", "Learning rate of the last optimizer step.", labels).Set(r.learning_rate);
  metrics_->Counter("r1r_learner_steps_total", "Learner steps served.", labels).Increment();
  metrics_->Counter("r1r_learner_optimizer_steps_total", "Optimizer steps taken.", labels)
      .Increment(static_cast<double>(r.optimizer_steps));
  metrics_->Counter("r1r_learner_skipped_steps_total", "Optimizer steps skipped for a non-finite loss or gradient.",
                    labels)
      .Increment(static_cast<double>(r.skipped_steps));
  if (auto it = r.metrics.find("tokens"); it != r.metrics.end() && r.seconds > 0) {
    metrics_->Gauge("r1r_learner_tokens_per_second", "Trained tokens per second in the last step.", labels)
        .Set(it->second / r.seconds);
  }
  if (phase != "rl") return;
  struct Named {
    const char* key;
    const char* name;
    const char* help;
  };
  for (const Named& m : {Named{"clip_fraction", "r1r_rl_clip_fraction", "Share of tokens whose ratio was clipped."},
                         Named{"preclip_fraction", "r1r_rl_preclip_fraction",
                               "Share of tokens whose log-ratio hit the pre-clip bounds."},
                         Named{"adv_filtered_fraction", "r1r_rl_adv_filtered_fraction",
                               "Share of tokens dropped by the advantage filter."},
                         Named{"kl", "r1r_rl_kl", "Mean per-token KL(policy || reference) before the step."},
                         Named{"approx_kl", "r1r_rl_approx_kl", "Mean per-token approximate KL(old || new)."},
                         Named{"reward_mean", "r1r_learner_reward_mean", "Mean total reward of the last rollout."},
                         Named{"response_length_mean", "r1r_learner_response_length_tokens",
                               "Mean response length of the last rollout in tokens."},
                         Named{"logprob_mismatch", "r1r_learner_logprob_mismatch_nats",
                               "Mean |actor - learner| log-prob per token of the last rollout, in nats."}}) {
    if (auto it = r.metrics.find(m.key); it != r.metrics.end() && std::isfinite(it->second)) {
      metrics_->Gauge(m.name, m.help).Set(it->second);
    }
  }
}

grpc::Status LearnerServiceImpl::SftStep(grpc::ServerContext* ctx, const v1::SftStepRequest* req,
                                         v1::StepMetrics* resp) {
  if (auto s = rpc::Authorize(ctx); !s.ok()) return s;
  if (req->examples_size() < 1 || req->examples_size() > kMaxExamples) {
    return Invalid(absl::StrCat("examples: need 1..", kMaxExamples, ", got ", req->examples_size()));
  }
  for (int i = 0; i < req->examples_size(); ++i) {
    const auto& e = req->examples(i);
    const std::string field = absl::StrCat("examples[", i, "]");
    if (auto s = ValidatePreference(e.preference(), field + ".preference", true); !s.ok()) return s;
    if (e.target_text().empty() || e.target_text().size() > kMaxTextBytes) {
      return Invalid(absl::StrCat(field, ".target_text: need 1 byte .. 64 KiB, got ", e.target_text().size()));
    }
  }
  absl::MutexLock lock(&mu_);
  if (IsFollower()) return NotRankZero(*options_.group);
  if (grpc::Status s = ReadyFor("sft"); !s.ok()) return s;
  absl::MutexLock group(&group_mu_);
  if (absl::Status s = Replicate(Command::kSft, *req); !s.ok()) return ReportGroupLoss(rpc::ToGrpc(s));
  return ReportGroupLoss(SftStepLocked(*req, resp));
}

grpc::Status LearnerServiceImpl::EncodeSftItems(const v1::SftStepRequest& req, std::vector<train::SftItem>* out) {
  if (grpc::Status s = ReadyFor("sft"); !s.ok()) return s;
  std::vector<train::SftItem>& items = *out;
  items.reserve(req.examples_size());
  for (int i = 0; i < req.examples_size(); ++i) {
    const auto& e = req.examples(i);
    train::SftItem item;
    train::PromptInput input = InputOf(e.preference());
    if (absl::Status s = CheckImage(&input.image_path, absl::StrCat("examples[", i, "].preference.sample.image_path"));
        !s.ok()) {
      return rpc::ToGrpc(s);
    }
    if (absl::Status s = policy_->encoder().VerifyImage(input.image_path, e.preference().sample().image_sha256());
        !s.ok()) {
      return rpc::ToGrpc(absl::Status(s.code(), absl::StrCat("examples[", i, "].preference.sample: ", s.message())));
    }
    auto prompt = policy_->encoder().Encode(input);
    if (!prompt.ok()) {
      return Invalid(absl::StrCat("examples[", i, "].preference: ", prompt.status().message()));
    }
    auto target = policy_->encoder().EncodeText(e.target_text());
    if (!target.ok()) return Invalid(absl::StrCat("examples[", i, "].target_text: ", target.status().message()));
    if (static_cast<int64_t>(prompt->ids.size()) > spec_.data.max_prompt_tokens) {
      return Invalid(absl::StrCat("examples[", i, "].preference: the prompt has ", prompt->ids.size(),
                                  " tokens, over data.max_prompt_tokens (", spec_.data.max_prompt_tokens, ")"));
    }
    item.prompt = std::move(*prompt);
    item.target_ids = std::move(*target);
    item.target_ids.push_back(policy_->end_of_turn_id());
    // Over-long traces are cut to sft.max_response_tokens (as OpenRLHF's max_len does) and counted.
    if (static_cast<int64_t>(item.target_ids.size()) > spec_.sft.max_response_tokens) {
      item.target_ids.resize(static_cast<size_t>(spec_.sft.max_response_tokens));
      metrics_->Counter("r1r_learner_truncated_targets_total", "SFT targets cut to sft.max_response_tokens.")
          .Increment();
    }
    items.push_back(std::move(item));
  }
  return grpc::Status::OK;
}

grpc::Status LearnerServiceImpl::SftStepLocked(const v1::SftStepRequest& req, v1::StepMetrics* resp) {
  std::vector<train::SftItem> items;
  const grpc::Status encoded = EncodeSftItems(req, &items);
  if (absl::Status s = Agree(rpc::FromGrpc(encoded)); !s.ok()) return encoded.ok() ? rpc::ToGrpc(s) : encoded;
  auto r = trainer_->SftStep(items);
  if (!r.ok()) return rpc::ToGrpc(r.status());
  ++sft_steps_;
  skipped_steps_ += r->skipped_steps;
  RecordStep("sft", *r);
  resp->set_policy_version(policy_version_);
  resp->set_loss(r->loss);
  resp->set_grad_norm(r->grad_norm);
  resp->set_learning_rate(r->learning_rate);
  resp->set_skipped(r->optimizer_steps == 0);
  resp->set_seconds(r->seconds);
  for (const auto& [k, v] : r->metrics) (*resp->mutable_metrics())[k] = v;
  return grpc::Status::OK;
}

grpc::Status LearnerServiceImpl::RlStep(grpc::ServerContext* ctx, const v1::ExperienceBatch* req,
                                        v1::StepMetrics* resp) {
  if (auto s = rpc::Authorize(ctx); !s.ok()) return s;
  const int n = req->trajectories_size();
  if (n < 1 || n > kMaxExamples) return Invalid(absl::StrCat("trajectories: need 1..", kMaxExamples, ", got ", n));
  if (req->rewards_size() != n) {
    return Invalid(absl::StrCat("rewards: need one per trajectory (", n, "), got ", req->rewards_size()));
  }
  for (int i = 0; i < n; ++i) {
    const auto& t = req->trajectories(i);
    const std::string field = absl::StrCat("trajectories[", i, "]");
    if (req->rewards(i).prompt_id() != t.prompt_id()) {
      return Invalid(absl::StrCat("rewards[", i, "].prompt_id: '", req->rewards(i).prompt_id(), "' does not match ",
                                  field, ".prompt_id '", t.prompt_id(), "'"));
    }
    if (!std::isfinite(req->rewards(i).total())) return Invalid(absl::StrCat("rewards[", i, "].total: not finite"));
    if (t.prompt_token_ids_size() < 1 || t.prompt_token_ids_size() > kMaxTokens) {
      return Invalid(absl::StrCat(field, ".prompt_token_ids: need 1..", kMaxTokens, " tokens"));
    }
    if (t.response_token_ids_size() < 1 || t.response_token_ids_size() > kMaxTokens) {
      return Invalid(absl::StrCat(field, ".response_token_ids: need 1..", kMaxTokens, " tokens"));
    }
    if (t.behaviour_logprobs_size() != 0 && t.behaviour_logprobs_size() != t.response_token_ids_size()) {
      return Invalid(absl::StrCat(field, ".behaviour_logprobs: need one per response token or none"));
    }
    for (int j = 0; j < t.behaviour_logprobs_size(); ++j) {
      // A NaN or infinite log-prob would reach the importance ratio and the loss.
      if (!std::isfinite(t.behaviour_logprobs(j)) || t.behaviour_logprobs(j) > 1e-3f) {
        return Invalid(absl::StrCat(field, ".behaviour_logprobs[", j, "]: ", t.behaviour_logprobs(j),
                                    " is not a log-probability (finite, <= 0)"));
      }
    }
    if (auto s = ValidatePreference(t.preference(), field + ".preference", false); !s.ok()) return s;
  }
  absl::MutexLock lock(&mu_);
  if (IsFollower()) return NotRankZero(*options_.group);
  if (grpc::Status s = ReadyFor("rl"); !s.ok()) return s;
  absl::MutexLock group(&group_mu_);
  if (absl::Status s = Replicate(Command::kRl, *req); !s.ok()) return ReportGroupLoss(rpc::ToGrpc(s));
  return ReportGroupLoss(RlStepLocked(*req, resp));
}

grpc::Status LearnerServiceImpl::EncodeRlItems(const v1::ExperienceBatch& req, std::vector<train::RlItem>* out,
                                               int64_t* stale) {
  if (grpc::Status s = ReadyFor("rl"); !s.ok()) return s;
  const int n = req.trajectories_size();
  const int64_t vocab = policy_->model().config().text.vocab_size;
  std::vector<train::RlItem>& items = *out;
  items.reserve(n);
  for (int i = 0; i < n; ++i) {
    const auto& t = req.trajectories(i);
    // On-policy: the version the learner holds. Off-policy: up to rl.off_policy_steps versions behind.
    const int64_t lag = policy_version_ - t.policy_version();
    if (lag < 0 || lag > spec_.rl.off_policy_steps) {
      return Precondition(absl::StrCat("trajectories[", i, "].policy_version: ", t.policy_version(),
                                       " but the learner holds version ", policy_version_,
                                       spec_.rl.off_policy_steps == 0 ? " (on-policy)"
                                                                      : " (at most one version behind)"));
    }
    if (lag > 0) ++*stale;
    train::RlItem item;
    std::string image =
        train::ResolveImagePath(t.preference().sample().dataset(), t.preference().sample().image_path());
    if (absl::Status s = CheckImage(&image, absl::StrCat("trajectories[", i, "].preference.sample.image_path"));
        !s.ok()) {
      return rpc::ToGrpc(s);
    }
    if (!image.empty()) {
      if (absl::Status s = policy_->encoder().VerifyImage(image, t.preference().sample().image_sha256()); !s.ok()) {
        return rpc::ToGrpc(absl::Status(s.code(), absl::StrCat("trajectories[", i, "].preference.sample: ", s.message())));
      }
      auto pixels = policy_->encoder().LoadImage(image);
      if (!pixels.ok()) {
        return Invalid(absl::StrCat("trajectories[", i, "].preference.sample.image_path: ", pixels.status().message()));
      }
      item.prompt.pixel_values = pixels->pixel_values;
      item.prompt.image_grid_thw = pixels->image_grid_thw;
    }
    for (int32_t id : t.prompt_token_ids()) {
      if (id < 0 || id >= vocab) return Invalid(absl::StrCat("trajectories[", i, "].prompt_token_ids: id ", id, " out of range"));
      item.prompt.ids.push_back(id);
    }
    for (int32_t id : t.response_token_ids()) {
      if (id < 0 || id >= vocab) {
        return Invalid(absl::StrCat("trajectories[", i, "].response_token_ids: id ", id, " out of range"));
      }
      item.response_ids.push_back(id);
    }
    item.behaviour_logprobs.assign(t.behaviour_logprobs().begin(), t.behaviour_logprobs().end());
    item.reward = req.rewards(i).total();
    items.push_back(std::move(item));
  }
  return grpc::Status::OK;
}

grpc::Status LearnerServiceImpl::RlStepLocked(const v1::ExperienceBatch& req, v1::StepMetrics* resp) {
  std::vector<train::RlItem> items;
  int64_t stale = 0;
  const grpc::Status encoded = EncodeRlItems(req, &items, &stale);
  if (absl::Status s = Agree(rpc::FromGrpc(encoded)); !s.ok()) return encoded.ok() ? rpc::ToGrpc(s) : encoded;
  train::RlStepOptions options = rl_options_;
  options.shuffle_seed = static_cast<uint64_t>(rl_steps_) + 1;
  auto r = trainer_->RlStep(items, options);
  if (!r.ok()) {
    // Bad input and a broken rank group keep their codes; anything else is the learner's fault.
    const absl::StatusCode code = r.status().code();
    const bool keep = code == absl::StatusCode::kInvalidArgument || code == absl::StatusCode::kUnavailable;
    return rpc::ToGrpc(absl::Status(keep ? code : absl::StatusCode::kInternal,
                                    absl::StrCat("RlStep: ", r.status().message())));
  }
  ++rl_steps_;
  skipped_steps_ += r->skipped_steps;
  if (r->optimizer_steps > 0) ++policy_version_;  // a rollout that changed nothing publishes nothing new
  RecordStep("rl", *r);
  metrics_->Gauge("r1r_learner_policy_version", "Policy version the learner holds.").Set(policy_version_);
  // A sharded optimizer state is written by every rank (each its shard); otherwise by rank 0.
  if ((!IsFollower() || trainer_->optimizer_state_is_sharded()) && spec_.rl.checkpoint_every > 0 &&
      rl_steps_ % spec_.rl.checkpoint_every == 0) {
    auto dir = WriteCheckpoint();
    if (!dir.ok()) return rpc::ToGrpc(dir.status());
  }
  resp->set_policy_version(policy_version_);
  resp->set_loss(r->loss);
  resp->set_grad_norm(r->grad_norm);
  resp->set_learning_rate(r->learning_rate);
  resp->set_skipped(r->optimizer_steps == 0);
  resp->set_seconds(r->seconds);
  for (const auto& [k, v] : r->metrics) (*resp->mutable_metrics())[k] = v;
  (*resp->mutable_metrics())["optimizer_steps"] = static_cast<double>(r->optimizer_steps);
  (*resp->mutable_metrics())["skipped_steps"] = static_cast<double>(r->skipped_steps);
  (*resp->mutable_metrics())["stale_fraction"] = static_cast<double>(stale) / static_cast<double>(items.size());
  metrics_->Counter("r1r_learner_stale_trajectories_total",
                    "Trajectories trained on one policy version after the one that sampled them (off-policy mode).")
      .Increment(static_cast<double>(stale));
  return grpc::Status::OK;
}

absl::StatusOr<std::string> LearnerServiceImpl::WriteCheckpoint() {
  const auto start = Clock::now();
  const std::string root = (fs::path(work_dir_) / "checkpoints").string();
  auto dir = train::SaveTrainingCheckpoint(root, sft_steps_ + rl_steps_, *policy_, trainer_.get(), StateJson());
  if (!dir.ok()) return dir.status();
  last_checkpoint_ = *dir;
  if (IsFollower()) return dir;  // it wrote its optimizer shard; rank 0 completes and prunes
  // rl.keep_checkpoints: the newest K stay, and never the one LATEST names (what a resume loads).
  auto pruned = train::PruneCheckpoints(root, spec_.rl.keep_checkpoints, *dir);
  if (!pruned.ok()) return pruned.status();
  metrics_->Counter("r1r_learner_checkpoints_pruned_total", "Training checkpoints deleted by rl.keep_checkpoints.")
      .Increment(static_cast<double>(pruned->size()));
  metrics_->Histogram("r1r_learner_checkpoint_seconds", "Time to write a training checkpoint in seconds.")
      .Observe(SecondsSince(start));
  return dir;
}

grpc::Status LearnerServiceImpl::SaveCheckpoint(grpc::ServerContext* ctx, const v1::SaveCheckpointRequest* req,
                                                v1::SaveCheckpointResponse* resp) {
  if (auto s = rpc::Authorize(ctx); !s.ok()) return s;
  if (req->data_cursor() < 0) return Invalid("data_cursor: must be >= 0");
  if (req->export_dir().size() > 4096) return Invalid("export_dir: over 4096 bytes");
  absl::MutexLock lock(&mu_);
  if (IsFollower()) return NotRankZero(*options_.group);
  if (!initialised_) return Precondition("learner not initialised: call Init first");
  // The export replaces the directory: only one under --export-root that is new, empty or ours.
  std::string export_dir;
  if (!req->export_dir().empty()) {
    auto confined = options_.export_roots.Confine(req->export_dir(), "export_dir");
    if (!confined.ok()) return rpc::ToGrpc(confined.status());
    if (absl::Status s = files::CheckReplaceable(*confined, "export_dir"); !s.ok()) return rpc::ToGrpc(s);
    export_dir = *confined;
  }
  data_cursor_ = req->data_cursor();
  absl::StatusOr<std::string> dir;
  if (trainer_ && trainer_->optimizer_state_is_sharded()) {
    // Every rank writes its optimizer shard: the other ranks write theirs on this command.
    absl::MutexLock group(&group_mu_);
    if (absl::Status s = Replicate(Command::kSave, *req); !s.ok()) return ReportGroupLoss(rpc::ToGrpc(s));
    dir = WriteCheckpoint();
    if (!dir.ok()) return ReportGroupLoss(rpc::ToGrpc(dir.status()));
  } else {
    dir = WriteCheckpoint();
  }
  if (!dir.ok()) return rpc::ToGrpc(dir.status());
  if (!export_dir.empty()) {
    if (absl::Status s = train::ExportModelDir(*policy_, export_dir, StateJson()); !s.ok()) {
      return rpc::ToGrpc(s);
    }
    if (absl::Status s = files::MarkOwned(export_dir, "r1r-learner SaveCheckpoint export"); !s.ok()) {
      return rpc::ToGrpc(s);
    }
  }
  resp->set_path(*dir);
  return grpc::Status::OK;
}

grpc::Status LearnerServiceImpl::StreamWeights(grpc::ServerContext* ctx, const v1::StreamWeightsRequest* req,
                                               grpc::ServerWriter<v1::WeightChunk>* writer) {
  if (auto s = rpc::Authorize(ctx); !s.ok()) return s;
  const int chunk_bytes = req->chunk_bytes() == 0 ? kDefaultChunkBytes : req->chunk_bytes();
  if (chunk_bytes < kMinChunkBytes || chunk_bytes > kMaxChunkBytes) {
    return Invalid(absl::StrCat("chunk_bytes: need 64 KiB..4 MiB (or 0), got ", req->chunk_bytes()));
  }
  const auto start = Clock::now();
  // A shared lock for the whole stream: training waits, other actors stream concurrently, and the
  // chunks come straight from the parameters (no snapshot copy of the model).
  absl::ReaderMutexLock lock(&mu_);
  if (!initialised_) return Precondition("learner not initialised: call Init first");
  if (req->min_version() > policy_version_) {
    return Precondition(absl::StrCat("min_version: ", req->min_version(), " requested, the learner holds version ",
                                     policy_version_));
  }
  const int64_t version = policy_version_;
  uint32_t crc = 0;
  int64_t total = 0;
  for (const auto& [name, tensor] : model::ExportWeights(policy_->model())) {
    auto view = train::ViewTensor(name, tensor);
    if (!view.ok()) return rpc::ToGrpc(view.status());
    size_t offset = 0;
    do {
      if (ctx->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "client cancelled the weight stream");
      const size_t n = std::min(static_cast<size_t>(chunk_bytes), view->size - offset);
      v1::WeightChunk chunk;
      chunk.set_version(version);
      chunk.set_tensor_name(view->name);
      chunk.set_dtype(view->dtype);
      for (int64_t d : view->shape) chunk.add_shape(d);
      chunk.set_offset(static_cast<int64_t>(offset));
      chunk.set_data(view->data + offset, n);
      crc = train::Crc32c(crc, view->data + offset, n);
      offset += n;
      chunk.set_last_chunk_of_tensor(offset == view->size);
      if (!writer->Write(chunk)) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "weight stream broken");
    } while (offset < view->size);
    total += static_cast<int64_t>(view->size);
  }
  // The trailer: no tensor, only the checksum and byte count of everything before it.
  v1::WeightChunk trailer;
  trailer.set_version(version);
  trailer.set_end_of_stream(true);
  trailer.set_crc32c(crc);
  trailer.set_total_bytes(total);
  if (!writer->Write(trailer)) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "weight stream broken");
  const double seconds = SecondsSince(start);
  spdlog::info("streamed weights version={} bytes={} seconds={:.3f}", version, total, seconds);
  metrics_->Histogram("r1r_learner_weight_sync_seconds", "Time to encode and stream the weights once in seconds.")
      .Observe(seconds);
  metrics_->Counter("r1r_learner_weight_sync_bytes_total", "Weight bytes streamed to actors.")
      .Increment(static_cast<double>(total));
  return grpc::Status::OK;
}

grpc::Status LearnerServiceImpl::GetState(grpc::ServerContext* ctx, const v1::GetStateRequest*,
                                          v1::LearnerState* resp) {
  if (auto s = rpc::Authorize(ctx); !s.ok()) return s;
  absl::ReaderMutexLock lock(&mu_);
  FillState(resp);
  return grpc::Status::OK;
}

}  // namespace r1r::learner
