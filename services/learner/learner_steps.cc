#include <chrono>
#include <filesystem>
#include <utility>

#include <absl/strings/str_cat.h>

#include "common/rpc/status.h"
#include "common/train/checkpoint.h"
#include "common/train/wire_prompt.h"
#include "services/learner/learner_policy.h"
#include "services/learner/learner_requests.h"
#include "services/learner/learner_service.h"
#include "services/learner/spec_options.h"

// LearnerServiceImpl's work under its mutex, on every rank: Init, encoding a request into training
// items, the SFT and RL steps, checkpoints and the state.json they carry. The handlers (checks,
// locking, replication) are in learner_service.cc.
namespace r1r::learner {
namespace fs = std::filesystem;
namespace {

// `s` with `prefix` before its message, same code.
absl::Status Prefixed(const std::string& prefix, const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat(prefix, s.message()));
}

}  // namespace

train::CheckpointState LearnerServiceImpl::State() const {
  train::CheckpointState s;
  s.job_id = job_id_;
  s.phase = phase_;
  s.policy_version = policy_version_;
  s.sft_steps = sft_steps_;
  s.rl_steps = rl_steps_;
  s.skipped_steps = skipped_steps_;
  s.data_cursor = data_cursor_;
  s.optimizer_steps = trainer_ ? trainer_->steps_done() : 0;
  return s;
}

void LearnerServiceImpl::RestoreState(const train::CheckpointState& s) {
  policy_version_ = s.policy_version;
  sft_steps_ = s.sft_steps;
  rl_steps_ = s.rl_steps;
  skipped_steps_ = s.skipped_steps;
  data_cursor_ = s.data_cursor;
  // The schedule continues only within the phase it was written in.
  if (trainer_ && s.phase == phase_) trainer_->set_steps_done(s.optimizer_steps);
}

absl::Status LearnerServiceImpl::InitLocked(const v1::InitRequest& req) {
  auto spec = config::ParseJobSpec(req.spec_yaml());
  if (!spec.ok()) return absl::InvalidArgumentError(absl::StrCat("spec_yaml: ", spec.status().message()));
  if (absl::Status s = CheckLearnerWorldSize(*spec, options_.group ? options_.group->world_size() : 1); !s.ok()) return s;
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
    auto policy = LoadLearnerPolicy(*spec, req.work_dir(), options_.image_cache_bytes);
    if (!policy.ok()) return policy.status();
    policy_ = *std::move(policy);
    reference_.reset();
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
      auto state = train::CheckpointState::Parse(*state_text, *dir + "/state.json");
      if (!state.ok()) return state.status();
      trainer_.reset();
      RestoreState(*state);
      resumed_dir = last_checkpoint_ = *dir;
      resumed_phase = state->phase;
    } else if (dir.status().code() != absl::StatusCode::kNotFound) {
      return dir.status();
    }
  }
  reference_.reset();
  if (phase == "rl" && spec_.rl.kl_coef > 0) {
    auto reference = LoadReferencePolicy(*policy_, work_dir_);
    if (!reference.ok()) return reference.status();
    reference_ = *std::move(reference);
  }
  const config::OptimSpec& optim = phase == "sft" ? spec_.sft.optim : spec_.rl.optim;
  // A new phase (or a re-Init) gets a fresh optimizer and schedule.
  trainer_ = std::make_unique<train::Trainer>(
      policy_.get(), reference_.get(),
      LearnerOptimizerOptions(spec_, optim, req.total_steps(), options_.micro_batch, options_.micro_batch_tokens));
  trainer_->set_process_group(options_.group);
  if (!resumed_dir.empty() && resumed_phase == phase_) {
    if (absl::Status s = trainer_->LoadOptimizerState(resumed_dir); !s.ok()) return s;
    auto state = train::CheckpointState::Read(resumed_dir);
    if (!state.ok()) return state.status();
    RestoreState(*state);  // now also the schedule position
  }
  initialised_ = true;
  metrics_.policy_version.Set(static_cast<double>(policy_version_));
  metrics_.parameters.Set(static_cast<double>(policy_->parameter_count()));
  return absl::OkStatus();
}

void LearnerServiceImpl::FillStepMetrics(const train::StepResult& r, v1::StepMetrics* resp) const {
  resp->set_policy_version(policy_version_);
  resp->set_loss(r.loss);
  resp->set_grad_norm(r.grad_norm);
  resp->set_learning_rate(r.learning_rate);
  resp->set_skipped(r.optimizer_steps == 0);
  resp->set_seconds(r.seconds);
  for (const auto& [k, v] : r.metrics) (*resp->mutable_metrics())[k] = v;
}

absl::Status LearnerServiceImpl::EncodeSftItems(const v1::SftStepRequest& req, std::vector<train::SftItem>* out) {
  if (grpc::Status s = ReadyFor("sft"); !s.ok()) return rpc::FromGrpc(s);
  const int64_t vocab = policy_->model().config().text.vocab_size;
  std::vector<train::SftItem>& items = *out;
  items.reserve(req.examples_size());
  for (int i = 0; i < req.examples_size(); ++i) {
    const auto& e = req.examples(i);
    const std::string field = absl::StrCat("examples[", i, "]");
    train::SftItem item;
    auto prompt = train::EncodeWirePrompt(policy_->encoder(), WirePromptOf(e.preference()), options_.read_roots, vocab);
    if (!prompt.ok()) return Prefixed(field + ".", prompt.status());
    auto target = policy_->encoder().EncodeText(e.target_text());
    if (!target.ok()) return absl::InvalidArgumentError(absl::StrCat(field, ".target_text: ", target.status().message()));
    if (static_cast<int64_t>(prompt->ids.size()) > spec_.data.max_prompt_tokens) {
      return absl::InvalidArgumentError(absl::StrCat(field, ".preference: the prompt has ", prompt->ids.size(),
                                                     " tokens, over data.max_prompt_tokens (",
                                                     spec_.data.max_prompt_tokens, ")"));
    }
    item.prompt = *std::move(prompt);
    item.target_ids = *std::move(target);
    item.target_ids.push_back(policy_->end_of_turn_id());
    // Over-long traces are cut to sft.max_response_tokens (as OpenRLHF's max_len does) and counted.
    if (static_cast<int64_t>(item.target_ids.size()) > spec_.sft.max_response_tokens) {
      item.target_ids.resize(static_cast<size_t>(spec_.sft.max_response_tokens));
      metrics_.truncated_targets.Increment();
    }
    items.push_back(std::move(item));
  }
  return absl::OkStatus();
}

grpc::Status LearnerServiceImpl::SftStepLocked(const v1::SftStepRequest& req, v1::StepMetrics* resp) {
  std::vector<train::SftItem> items;
  const absl::Status encoded = EncodeSftItems(req, &items);
  // This rank's own error wins over the agreement's (another rank failed, or the group broke).
  if (absl::Status s = ranks_.Agree(encoded); !s.ok()) return rpc::ToGrpc(encoded.ok() ? s : encoded);
  auto r = trainer_->SftStep(items);
  if (!r.ok()) return rpc::ToGrpc(r.status());
  ++sft_steps_;
  skipped_steps_ += r->skipped_steps;
  // Every rank trains the same step: only rank 0 counts it, so sums over scraped pods stay right.
  if (!IsFollower()) {
    metrics_.RecordStep("sft", *r, policy_->encoder().image_cache_bytes(), policy_->encoder().image_cache_evictions());
  }
  FillStepMetrics(*r, resp);
  return grpc::Status::OK;
}

absl::Status LearnerServiceImpl::EncodeRlItems(const v1::ExperienceBatch& req, std::vector<train::RlItem>* out,
                                               int64_t* stale) {
  if (grpc::Status s = ReadyFor("rl"); !s.ok()) return rpc::FromGrpc(s);
  const int n = req.trajectories_size();
  const int64_t vocab = policy_->model().config().text.vocab_size;
  std::vector<train::RlItem>& items = *out;
  items.reserve(n);
  for (int i = 0; i < n; ++i) {
    const auto& t = req.trajectories(i);
    const std::string field = absl::StrCat("trajectories[", i, "]");
    // On-policy: the version the learner holds. Off-policy: up to rl.off_policy_steps versions behind.
    const int64_t lag = policy_version_ - t.policy_version();
    if (lag < 0 || lag > spec_.rl.off_policy_steps) {
      return absl::FailedPreconditionError(absl::StrCat(
          field, ".policy_version: ", t.policy_version(), " but the learner holds version ", policy_version_,
          spec_.rl.off_policy_steps == 0 ? " (on-policy)" : " (at most one version behind)"));
    }
    if (lag > 0) ++*stale;
    train::RlItem item;
    const absl::Span<const int32_t> prompt_ids(t.prompt_token_ids().data(), t.prompt_token_ids_size());
    auto prompt =
        train::EncodeWirePrompt(policy_->encoder(), WirePromptOf(t.preference(), prompt_ids), options_.read_roots, vocab);
    if (!prompt.ok()) return Prefixed(field + ".", prompt.status());
    item.prompt = *std::move(prompt);
    auto response = train::TokenIdsInRange({t.response_token_ids().data(), static_cast<size_t>(t.response_token_ids_size())},
                                           vocab, field + ".response_token_ids");
    if (!response.ok()) return response.status();
    item.response_ids = *std::move(response);
    item.behaviour_logprobs.assign(t.behaviour_logprobs().begin(), t.behaviour_logprobs().end());
    item.reward = req.rewards(i).total();
    items.push_back(std::move(item));
  }
  return absl::OkStatus();
}

grpc::Status LearnerServiceImpl::RlStepLocked(const v1::ExperienceBatch& req, v1::StepMetrics* resp) {
  std::vector<train::RlItem> items;
  int64_t stale = 0;
  const absl::Status encoded = EncodeRlItems(req, &items, &stale);
  if (absl::Status s = ranks_.Agree(encoded); !s.ok()) return rpc::ToGrpc(encoded.ok() ? s : encoded);
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
  if (!IsFollower()) {
    metrics_.RecordStep("rl", *r, policy_->encoder().image_cache_bytes(), policy_->encoder().image_cache_evictions());
  }
  metrics_.policy_version.Set(static_cast<double>(policy_version_));
  // A sharded optimizer state is written by every rank (each its shard); otherwise by rank 0.
  if ((!IsFollower() || trainer_->optimizer_state_is_sharded()) && spec_.rl.checkpoint_every > 0 &&
      rl_steps_ % spec_.rl.checkpoint_every == 0) {
    auto dir = WriteCheckpoint();
    if (!dir.ok()) return rpc::ToGrpc(dir.status());
  }
  FillStepMetrics(*r, resp);
  (*resp->mutable_metrics())["optimizer_steps"] = static_cast<double>(r->optimizer_steps);
  (*resp->mutable_metrics())["skipped_steps"] = static_cast<double>(r->skipped_steps);
  (*resp->mutable_metrics())["stale_fraction"] = static_cast<double>(stale) / static_cast<double>(items.size());
  metrics_.stale_trajectories.Increment(static_cast<double>(stale));
  return grpc::Status::OK;
}

absl::StatusOr<std::string> LearnerServiceImpl::WriteCheckpoint() {
  const auto start = std::chrono::steady_clock::now();
  const std::string root = (fs::path(work_dir_) / "checkpoints").string();
  auto dir = train::SaveTrainingCheckpoint(root, sft_steps_ + rl_steps_, *policy_, trainer_.get(), State().ToJson());
  if (!dir.ok()) return dir.status();
  last_checkpoint_ = *dir;
  if (IsFollower()) return dir;  // it wrote its optimizer shard; rank 0 completes and prunes
  // rl.keep_checkpoints: the newest K stay, and never the one LATEST names (what a resume loads).
  auto pruned = train::PruneCheckpoints(root, spec_.rl.keep_checkpoints, *dir);
  if (!pruned.ok()) return pruned.status();
  metrics_.checkpoints_pruned.Increment(static_cast<double>(pruned->size()));
  metrics_.checkpoint_seconds.Observe(rpc::SecondsSince(start));
  return dir;
}

}  // namespace r1r::learner
