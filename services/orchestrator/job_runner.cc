#include "services/orchestrator/job_runner.h"

#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <numeric>

#include <absl/algorithm/container.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>
#include <absl/time/clock.h>
#include <absl/time/time.h>

#include "common/data/transforms.h"
#include "common/eval/judgement.h"
#include "common/obs/log.h"

namespace r1r::orchestrator {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// How often one phase may resume after a learner restart, and how long a restart may take.
constexpr int kLearnerRecoveries = 3;
constexpr absl::Duration kLearnerRestartWait = absl::Minutes(5);
// The same for an actor that lost its weights (restarted) in the middle of a generation.
constexpr int kActorRecoveries = 3;
constexpr absl::Duration kActorRestartWait = absl::Minutes(2);

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

v1::PreferencePrompt ToPreference(const data::PreferenceSample& s) {
  v1::PreferencePrompt p;
  p.mutable_sample()->set_sample_id(s.id);
  p.mutable_sample()->set_image_path(s.image_path);
  p.set_question(s.question);
  p.set_response1(s.response1);
  p.set_response2(s.response2);
  p.set_label(s.label);
  return p;
}

struct EvalResult {
  double accuracy = 0, format_rate = 0, consistency_rate = 0, voting_accuracy = -1;
};

}  // namespace

// One job's execution: the spec, its work dir, the cluster and the persisted progress.
class JobRunner::Run {
 public:
  Run(jobs::JobStore* store, obs::Metrics* metrics, v1::Job job, config::JobSpec spec, std::unique_ptr<Cluster> cluster,
      const std::atomic<bool>* stopping)
      : store_(store), metrics_(metrics), job_(std::move(job)), spec_(std::move(spec)), cluster_(std::move(cluster)),
        stopping_(stopping) {
    work_dir_ = fs::absolute(job_.work_dir()).string();
    model_dir_ = work_dir_ + "/model";
  }

  absl::Status Execute() {
    if (absl::Status s = Phase(v1::PHASE_DATA_PREP, [&] { return DataPrep(); }); !s.ok()) return s;
    if (spec_.sft.enabled) {
      if (absl::Status s = Phase(v1::PHASE_SFT, [&] { return Sft(); }); !s.ok()) return s;
    }
    if (spec_.rl.enabled) {
      if (absl::Status s = Phase(v1::PHASE_RL, [&] { return Rl(); }); !s.ok()) return s;
    }
    if (absl::Status s = Phase(v1::PHASE_EVAL, [&] { return FinalEval(); }); !s.ok()) return s;
    return Phase(v1::PHASE_PUBLISH, [&] { return Publish(); });
  }

 private:
  // Runs `body` unless the phase already SUCCEEDED (resume), recording state and wall time.
  absl::Status Phase(v1::Phase phase, const std::function<absl::Status()>& body) {
    if (PhaseState(phase) == v1::JOB_STATE_SUCCEEDED && phase != v1::PHASE_DATA_PREP) return absl::OkStatus();
    const auto start = Clock::now();
    current_phase_ = phase;
    phase_start_ = start;
    phase_prior_seconds_ = 0;  // wall time of earlier runs of this phase (before a restart)
    for (const auto& p : job_.phases()) {
      if (p.phase() == phase) phase_prior_seconds_ = p.wall_seconds();
    }
    if (absl::Status s = UpdatePhase(phase, [](v1::PhaseProgress& p) { p.set_state(v1::JOB_STATE_RUNNING); },
                                     absl::StrCat(v1::Phase_Name(phase).substr(6), " started"));
        !s.ok())
      return s;
    absl::Status s = RunResumingAfterLearnerRestarts(phase, body);
    // A failure while the orchestrator stops (a recovery given up, a call cut short) is the stop: the
    // phase stays RUNNING and resumes after the restart.
    if (!s.ok() && !absl::IsCancelled(s) && stopping_->load()) s = absl::AbortedError(absl::StrCat("orchestrator stopping (", s.message(), ")"));
    const double seconds = Since(start);
    metrics_->Gauge("r1r_orchestrator_phase_seconds", "Wall seconds of the last run of each phase.",
                    {{"phase", v1::Phase_Name(phase)}})
        .Set(seconds);
    if (!s.ok()) {
      if (absl::IsAborted(s)) return s;  // stopping: the phase stays RUNNING and resumes
      (void)UpdatePhase(phase, [&](v1::PhaseProgress& p) { p.set_state(absl::IsCancelled(s) ? v1::JOB_STATE_CANCELLED : v1::JOB_STATE_FAILED); },
                        absl::StrCat(v1::Phase_Name(phase).substr(6), " stopped: ", s.message()));
      return s;
    }
    return UpdatePhase(phase,
                       [&](v1::PhaseProgress& p) {
                         p.set_state(v1::JOB_STATE_SUCCEEDED);
                         p.set_wall_seconds(phase_prior_seconds_ + seconds);
                       },
                       absl::StrFormat("%s done in %.1fs", v1::Phase_Name(phase).substr(6), seconds));
  }

  // SFT, RL and publish start by initialising the learner from the job's last checkpoint (publish
  // only when the learner lacks the job), so after a learner restart (a crash, a rank lost from its
  // group) running them again resumes where it saved; SFT saves only at its end, so it starts over.
  // A restart is a learner that had taken this job in this run and answers without it.
  absl::Status RunResumingAfterLearnerRestarts(v1::Phase phase, const std::function<absl::Status()>& body) {
    absl::Status s = body();
    const bool resumable = phase == v1::PHASE_SFT || phase == v1::PHASE_RL || phase == v1::PHASE_PUBLISH;
    for (int recovery = 1; resumable && !s.ok() && !absl::IsAborted(s) && !absl::IsCancelled(s) &&
                           learner_holds_job_ && recovery <= kLearnerRecoveries && LearnerRestarted();
         ++recovery) {
      learner_holds_job_ = false;
      metrics_->Counter("r1r_orchestrator_learner_recoveries_total", "Phases resumed after a learner restart.")
          .Increment();
      const std::string note =
          absl::StrFormat("the learner restarted (%s); resuming %s from the last checkpoint (recovery %d of %d)",
                          s.message(), v1::Phase_Name(phase).substr(6), recovery, kLearnerRecoveries);
      if (absl::Status u = UpdatePhase(phase, [](v1::PhaseProgress&) {}, note); !u.ok()) return u;
      s = body();
    }
    return s;
  }

  // After a failed call: waits (up to kLearnerRestartWait) for the learner to answer, and says whether
  // it came back without this job, i.e. it restarted. A learner still holding the job failed for
  // another reason, which resuming would not mend.
  bool LearnerRestarted() {
    auto state = WaitForLearner();
    return state.ok() && state->job_id() != job_.id();
  }

  // The learner's state once it answers (waiting up to kLearnerRestartWait, e.g. while it restarts).
  absl::StatusOr<v1::LearnerState> WaitForLearner() {
    const absl::Time deadline = absl::Now() + kLearnerRestartWait;
    auto state = cluster_->LearnerState();
    while (!state.ok() && absl::Now() < deadline && !stopping_->load()) {
      absl::SleepFor(absl::Seconds(1));
      state = cluster_->LearnerState();
    }
    return state;
  }

  v1::JobState PhaseState(v1::Phase phase) const {
    for (const auto& p : job_.phases()) {
      if (p.phase() == phase) return p.state();
    }
    return v1::JOB_STATE_UNSPECIFIED;
  }

  absl::Status UpdatePhase(v1::Phase phase, const std::function<void(v1::PhaseProgress&)>& fn, const std::string& msg) {
    auto job = store_->Update(
        job_.id(),
        [&](v1::Job& j) {
          for (auto& p : *j.mutable_phases()) {
            if (p.phase() == phase) fn(p);
          }
          j.set_policy_version(version_);
        },
        msg, phase);
    if (!job.ok()) return job.status();
    job_ = *job;
    return absl::OkStatus();
  }

  absl::Status Progress(int64_t step, int64_t total, const std::map<std::string, double>& metrics,
                        const std::string& msg) {
    return UpdatePhase(current_phase_,
                       [&](v1::PhaseProgress& p) {
                         p.set_step(step);
                         p.set_total_steps(total);
                         p.set_wall_seconds(phase_prior_seconds_ + Since(phase_start_));
                         for (const auto& [k, v] : metrics) (*p.mutable_metrics())[k] = v;
                       },
                       msg);
  }

  absl::Status CheckCancelled() {
    // A stopping orchestrator leaves the job RUNNING on disk; the next start re-queues and resumes it.
    if (stopping_->load()) return absl::AbortedError("orchestrator stopping");
    auto job = store_->Get(job_.id());
    if (job.ok() && job->state() == v1::JOB_STATE_CANCELLED) return absl::CancelledError("job cancelled");
    return absl::OkStatus();
  }

  absl::Status DataPrep() {
    auto data = PrepareData(spec_, work_dir_);
    if (!data.ok()) return data.status();
    data_ = std::move(*data);
    if (absl::Status s = PrepareTokenizer(spec_, data_, model_dir_); !s.ok()) return s;
    if (absl::Status s = WritePromptLayout(spec_, model_dir_); !s.ok()) return s;
    return Progress(1, 1,
                    {{"sft_samples", static_cast<double>(data_.sft.size())},
                     {"rl_samples", static_cast<double>(data_.rl.size())},
                     {"heldout_samples", static_cast<double>(data_.heldout.size())},
                     {"bad_rows", static_cast<double>(data_.bad_rows)}},
                    data_.report);
  }

  absl::StatusOr<v1::LearnerState> InitLearner(const std::string& phase, int64_t total_steps) {
    v1::InitRequest req;
    req.set_job_id(job_.id());
    req.set_spec_yaml(job_.spec_yaml());
    req.set_work_dir(work_dir_);
    req.set_resume(fs::exists(work_dir_ + "/checkpoints/LATEST"));
    req.set_phase(phase);
    req.set_total_steps(total_steps);
    auto state = cluster_->InitLearner(req);
    if (!state.ok()) return state.status();
    learner_holds_job_ = true;
    version_ = state->policy_version();
    return state;
  }

  // Generates with the weights the actors should hold (version_). An actor that restarted holds none:
  // when one answers with another version, every actor loads version_ again and the call is repeated.
  absl::StatusOr<std::vector<v1::Trajectory>> GenerateOnCurrentWeights(const std::vector<v1::Prompt>& prompts,
                                                                       const v1::SamplingParams& sampling) {
    auto traj = cluster_->Generate(prompts, sampling, version_);
    for (int recovery = 1; !traj.ok() && recovery <= kActorRecoveries && ActorsLostWeights(); ++recovery) {
      const std::string note = absl::StrFormat(
          "an actor lost its weights (%s); loading version %d into every actor again (recovery %d of %d)",
          traj.status().message(), version_, recovery, kActorRecoveries);
      if (absl::Status u = UpdatePhase(current_phase_, [](v1::PhaseProgress&) {}, note); !u.ok()) return u;
      metrics_->Counter("r1r_orchestrator_actor_recoveries_total", "Generations retried after an actor restart.")
          .Increment();
      if (absl::Status s = SyncActors(); !s.ok()) return s;
      traj = cluster_->Generate(prompts, sampling, version_);
    }
    return traj;
  }

  // After a failed generation: waits (up to kActorRestartWait) for every actor to answer, and says
  // whether one holds a version other than version_ (a restart leaves it none).
  bool ActorsLostWeights() {
    const absl::Time deadline = absl::Now() + kActorRestartWait;
    while (!stopping_->load()) {
      auto versions = cluster_->ActorVersions();
      if (versions.ok()) return absl::c_any_of(*versions, [&](int64_t v) { return v != version_; });
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Seconds(2));
    }
    return false;
  }

  // Every actor loads version_. An actor that does not answer (restarting) is waited for, up to
  // kActorRestartWait.
  absl::Status SyncActors() {
    const absl::Time deadline = absl::Now() + kActorRestartWait;
    auto seconds = cluster_->SyncActors(version_, model_dir_);
    if (!seconds.ok() && absl::IsUnavailable(seconds.status())) {
      const std::string note =
          absl::StrCat("an actor did not take the weights (", seconds.status().message(), "); waiting for it");
      if (absl::Status u = UpdatePhase(current_phase_, [](v1::PhaseProgress&) {}, note); !u.ok()) return u;
      while (!seconds.ok() && absl::IsUnavailable(seconds.status()) && absl::Now() < deadline && !stopping_->load()) {
        absl::SleepFor(absl::Seconds(2));
        seconds = cluster_->SyncActors(version_, model_dir_);
      }
    }
    if (!seconds.ok()) return seconds.status();
    metrics_->Histogram("r1r_orchestrator_weight_sync_seconds", "Time for all actors to load new weights in seconds.")
        .Observe(*seconds);
    return absl::OkStatus();
  }

  std::vector<v1::Prompt> Prompts(const std::vector<data::PreferenceSample>& set, const std::vector<size_t>& idx,
                                  const std::string& prefix, int copies = 1) {
    std::vector<v1::Prompt> out;
    // Batch position first: a batch that crosses an epoch boundary may hold a sample twice.
    for (size_t pos = 0; pos < idx.size(); ++pos) {
      const size_t i = idx[pos];
      for (int k = 0; k < copies; ++k) {
        v1::Prompt p;
        p.set_prompt_id(absl::StrCat(prefix, "-", pos, "-", i, "-", k));
        *p.mutable_preference() = ToPreference(set[i]);
        out.push_back(std::move(p));
      }
    }
    return out;
  }

  v1::RewardWeights Weights() const {
    v1::RewardWeights w;
    w.set_use_explicit(true);
    w.set_format_weight(static_cast<float>(spec_.rl.format_weight));
    w.set_consistency_weight(static_cast<float>(spec_.rl.consistency_weight));
    return w;
  }

  // Accuracy, format and consistency rates of greedy answers on the held-out set (and voting@K).
  absl::StatusOr<EvalResult> Evaluate(const std::string& stage, bool with_voting) {
    EvalResult r;
    if (data_.heldout.empty()) return r;
    std::vector<size_t> all(data_.heldout.size());
    std::iota(all.begin(), all.end(), 0);
    v1::SamplingParams greedy;
    greedy.set_temperature(0);
    greedy.set_max_new_tokens(static_cast<int32_t>(spec_.rl.max_new_tokens));
    greedy.set_seed(1);
    auto traj = GenerateOnCurrentWeights(Prompts(data_.heldout, all, stage), greedy);
    if (!traj.ok()) return traj.status();
    auto rewards = cluster_->Score(*traj, Weights());
    if (!rewards.ok()) return rewards.status();
    for (const auto& b : *rewards) {
      r.accuracy += b.result();
      r.format_rate += b.format();
      r.consistency_rate += b.consistency() > 0 ? 1 : 0;
    }
    const double n = static_cast<double>(rewards->size());
    r.accuracy /= n;
    r.format_rate /= n;
    r.consistency_rate /= n;
    if (with_voting && spec_.eval.votes > 1) {
      const int k = static_cast<int>(spec_.eval.votes);
      v1::SamplingParams sample;
      sample.set_temperature(static_cast<float>(spec_.eval.vote_temperature));
      sample.set_max_new_tokens(static_cast<int32_t>(spec_.rl.max_new_tokens));
      sample.set_seed(7);
      auto votes = GenerateOnCurrentWeights(Prompts(data_.heldout, all, stage + "-vote", k), sample);
      if (!votes.ok()) return votes.status();
      eval::Tally tally;
      for (size_t i = 0; i < data_.heldout.size(); ++i) {
        std::vector<eval::Outcome> outcomes;
        for (int j = 0; j < k; ++j) {
          outcomes.push_back(eval::OutcomeFor(eval::ParseChoice((*votes)[i * k + j].response_text()),
                                              data_.heldout[i].label));
        }
        tally.Add(eval::MajorityVote(outcomes) == eval::Outcome::kCorrect);
      }
      r.voting_accuracy = tally.Accuracy();
    }
    return r;
  }

  absl::Status RecordEval(const std::string& stage, bool with_voting) {
    if (job_.phases().empty()) return absl::OkStatus();
    for (const auto& p : job_.phases()) {
      if (p.phase() == v1::PHASE_EVAL && p.metrics().count(stage + ".accuracy")) return absl::OkStatus();  // resumed
    }
    auto r = Evaluate(stage, with_voting);
    if (!r.ok()) return r.status();
    std::map<std::string, double> m = {{stage + ".accuracy", r->accuracy},
                                       {stage + ".format_rate", r->format_rate},
                                       {stage + ".consistency_rate", r->consistency_rate}};
    if (r->voting_accuracy >= 0) m[stage + ".voting_accuracy"] = r->voting_accuracy;
    metrics_->Gauge("r1r_eval_accuracy_ratio", "Held-out accuracy by stage.", {{"stage", stage}}).Set(r->accuracy);
    metrics_->Gauge("r1r_eval_format_rate_ratio", "Held-out format rate by stage.", {{"stage", stage}}).Set(r->format_rate);
    return UpdatePhase(v1::PHASE_EVAL,
                       [&](v1::PhaseProgress& p) {
                         for (const auto& [k, v] : m) (*p.mutable_metrics())[k] = v;
                       },
                       absl::StrFormat("eval %s: accuracy %.3f, format %.3f, consistency %.3f", stage, r->accuracy,
                                       r->format_rate, r->consistency_rate));
  }

  absl::Status Sft() {
    const int64_t batch = spec_.sft.batch_size;
    const int64_t n = static_cast<int64_t>(data_.sft.size());
    if (n == 0) return absl::FailedPreconditionError("the SFT set is empty");
    const int64_t per_epoch = (n + batch - 1) / batch;
    const int64_t total = per_epoch * spec_.sft.epochs;
    auto state = InitLearner("sft", total);
    if (!state.ok()) return state.status();
    if (absl::Status s = SyncActors(); !s.ok()) return s;
    if (absl::Status s = RecordEval("before_sft", false); !s.ok()) return s;
    data::EpochSampler sampler(static_cast<size_t>(n), 0, 1, {static_cast<uint64_t>(spec_.data.seed), 0, 0});
    for (int64_t skip = 0; skip < state->sft_steps(); ++skip) sampler.NextBatch(static_cast<size_t>(batch));
    for (int64_t step = state->sft_steps(); step < total; ++step) {
      if (absl::Status s = CheckCancelled(); !s.ok()) return s;
      v1::SftStepRequest req;
      for (size_t i : sampler.NextBatch(static_cast<size_t>(batch))) {
        const auto& sample = data_.sft[i];
        if (!sample.reasoning) continue;  // rows without a trace cannot teach the format
        v1::SftExample* ex = req.add_examples();
        *ex->mutable_preference() = ToPreference(sample);
        ex->set_target_text(*sample.reasoning);
      }
      if (req.examples_size() == 0) return absl::FailedPreconditionError("SFT rows have no reasoning traces");
      auto m = cluster_->SftStep(req);
      if (!m.ok()) return m.status();
      version_ = m->policy_version();
      if (absl::Status s = Progress(step + 1, total, {{"loss", m->loss()}, {"learning_rate", m->learning_rate()}},
                                    absl::StrFormat("sft step %d/%d loss %.4f", step + 1, total, m->loss()));
          !s.ok())
        return s;
    }
    auto saved = cluster_->SaveCheckpoint(total, "");
    if (!saved.ok()) return saved.status();
    if (absl::Status s = SyncActors(); !s.ok()) return s;
    return RecordEval("after_sft", false);
  }

  absl::Status Rl() {
    const config::RlSpec& rl = spec_.rl;
    const int64_t n = static_cast<int64_t>(data_.rl.size());
    if (n == 0) return absl::FailedPreconditionError("the RL set is empty");
    const int64_t steps = rl.steps > 0 ? rl.steps : rl.epochs * ((n + rl.rollout_batch_size - 1) / rl.rollout_batch_size);
    const int64_t optimizer_steps = steps * rl.ppo_epochs * (rl.rollout_batch_size / rl.train_batch_size);
    auto state = InitLearner("rl", optimizer_steps);
    if (!state.ok()) return state.status();
    if (absl::Status s = SyncActors(); !s.ok()) return s;
    if (!spec_.sft.enabled) {
      if (absl::Status s = RecordEval("after_sft", false); !s.ok()) return s;
    }
    const int64_t prompts_per_step = std::max<int64_t>(1, rl.rollout_batch_size / rl.samples_per_prompt);
    data::EpochSampler sampler(static_cast<size_t>(n), 0, 1, {static_cast<uint64_t>(spec_.data.seed) + 17, 0, 0});
    for (int64_t skip = 0; skip < state->rl_steps(); ++skip) sampler.NextBatch(static_cast<size_t>(prompts_per_step));
    // Off-policy mode: step t+1's rollouts are generated while the learner trains on step t's.
    const bool overlap = rl.off_policy_steps > 0;
    // Step `s`'s prompts, sampled by the weights the actors hold (version `version`).
    auto generate = [&](int64_t s, int64_t version,
                        std::vector<size_t> idx) -> absl::StatusOr<std::vector<v1::Trajectory>> {
      std::vector<v1::Prompt> prompts =
          Prompts(data_.rl, idx, absl::StrCat("rl", s), static_cast<int>(rl.samples_per_prompt));
      v1::SamplingParams sampling;
      sampling.set_temperature(static_cast<float>(rl.temperature));
      sampling.set_top_p(static_cast<float>(rl.top_p));
      sampling.set_top_k(static_cast<int32_t>(rl.top_k));
      sampling.set_max_new_tokens(static_cast<int32_t>(rl.max_new_tokens));
      sampling.set_seed(static_cast<uint64_t>(1000 + s));
      // On-policy, the actors hold version_ and a restarted one can be given it again; ahead of time,
      // on another thread, that would race the step's own weight sync.
      return overlap ? cluster_->Generate(prompts, sampling, version) : GenerateOnCurrentWeights(prompts, sampling);
    };
    std::future<absl::StatusOr<std::vector<v1::Trajectory>>> ahead;
    for (int64_t step = state->rl_steps(); step < steps; ++step) {
      if (absl::Status s = CheckCancelled(); !s.ok()) return s;
      const auto t0 = Clock::now();
      absl::StatusOr<std::vector<v1::Trajectory>> traj =
          ahead.valid() ? ahead.get()
                        : generate(step, version_, sampler.NextBatch(static_cast<size_t>(prompts_per_step)));
      if (!traj.ok()) return traj.status();
      const double gen_s = Since(t0);  // overlapped: only the wait for the actors
      double sync_s = 0;
      if (overlap) {  // the actors are idle now: give them the learner's newest weights
        const auto ts = Clock::now();
        if (absl::Status s = SyncActors(); !s.ok()) return s;
        sync_s = Since(ts);
      }
      const auto t1 = Clock::now();
      auto rewards = cluster_->Score(*traj, Weights());
      if (!rewards.ok()) return rewards.status();
      const double reward_s = Since(t1);
      if (overlap && step + 1 < steps) {
        ahead = std::async(std::launch::async, generate, step + 1, version_,
                           sampler.NextBatch(static_cast<size_t>(prompts_per_step)));
      }
      v1::ExperienceBatch batch;
      for (const auto& t : *traj) *batch.add_trajectories() = t;
      for (const auto& r : *rewards) *batch.add_rewards() = r;
      const auto t2 = Clock::now();
      auto m = cluster_->RlStep(batch);
      if (!m.ok()) return m.status();
      const double learn_s = Since(t2);
      version_ = m->policy_version();
      if (!overlap) {
        const auto t3 = Clock::now();
        if (absl::Status s = SyncActors(); !s.ok()) return s;
        sync_s = Since(t3);
      }
      const double total_s = Since(t0);
      double acc = 0, fmt = 0, reward = 0;
      for (const auto& r : *rewards) {
        acc += r.result();
        fmt += r.format();
        reward += r.total();
      }
      const double k = static_cast<double>(rewards->size());
      std::map<std::string, double> metrics = {{"reward_mean", reward / k},   {"accuracy", acc / k},
                                               {"format_rate", fmt / k},      {"loss", m->loss()},
                                               {"generation_seconds", gen_s}, {"reward_seconds", reward_s},
                                               {"learner_seconds", learn_s},  {"weight_sync_seconds", sync_s},
                                               {"learner_compute_seconds", m->seconds()},
                                               {"step_seconds", total_s}};
      for (const auto& [key, v] : m->metrics()) metrics[key] = v;
      for (const char* part : {"generation", "reward", "learner", "weight_sync"}) {
        metrics_->Histogram("r1r_orchestrator_rl_part_seconds", "RL step time by part in seconds.", {{"part", part}})
            .Observe(metrics[absl::StrCat(part, "_seconds")]);
      }
      metrics_->Histogram("r1r_orchestrator_rl_step_seconds", "Wall time of one RL step in seconds.").Observe(total_s);
      metrics_->Gauge("r1r_orchestrator_policy_version", "Policy version of the running job.").Set(static_cast<double>(version_));
      if (absl::Status s = Progress(step + 1, steps, metrics,
                                    absl::StrFormat("rl step %d/%d reward %.3f accuracy %.3f loss %.4f", step + 1, steps,
                                                    reward / k, acc / k, m->loss()));
          !s.ok())
        return s;
    }
    if (overlap) {  // the last step's weights, for the evaluations that follow
      if (absl::Status s = SyncActors(); !s.ok()) return s;
    }
    auto saved = cluster_->SaveCheckpoint(steps, "");
    return saved.ok() ? absl::OkStatus() : saved.status();
  }

  absl::Status FinalEval() {
    if (!spec_.sft.enabled && !spec_.rl.enabled) {
      // Nothing trained in this job: the learner loads the named model so the actors can pull it.
      auto state = InitLearner("sft", 0);
      if (!state.ok()) return state.status();
      if (absl::Status s = SyncActors(); !s.ok()) return s;
      return RecordEval("final", true);
    }
    return RecordEval(spec_.rl.enabled ? "after_rl" : "after_sft_final", true);
  }

  absl::Status Publish() {
    // A learner restarted since training ended (or with the orchestrator) has lost the job: it loads
    // the last checkpoint, which holds the trained weights, before it exports them.
    auto held = WaitForLearner();
    if (!held.ok()) return held.status();
    if (held->job_id() != job_.id()) {
      auto state = InitLearner(spec_.rl.enabled ? "rl" : "sft", 0);
      if (!state.ok()) return state.status();
    } else {
      learner_holds_job_ = true;  // held since before an orchestrator restart: a crash now is a restart
    }
    auto saved = cluster_->SaveCheckpoint(0, work_dir_ + "/published");
    if (!saved.ok()) return saved.status();
    return Progress(1, 1, {{"policy_version", static_cast<double>(version_)}},
                    absl::StrCat("published ", work_dir_, "/published"));
  }

  jobs::JobStore* store_;
  obs::Metrics* metrics_;
  v1::Job job_;
  config::JobSpec spec_;
  std::unique_ptr<Cluster> cluster_;
  std::string work_dir_, model_dir_;
  // The learner accepted this job's Init in this run, and no restart has been seen since.
  bool learner_holds_job_ = false;
  PreparedData data_;
  int64_t version_ = 0;
  v1::Phase current_phase_ = v1::PHASE_UNSPECIFIED;
  Clock::time_point phase_start_;
  double phase_prior_seconds_ = 0;
  const std::atomic<bool>* stopping_;
};

JobRunner::JobRunner(jobs::JobStore* store, std::optional<ClusterTargets> targets, SpecRoots roots,
                     obs::Metrics* metrics)
    : store_(store), targets_(std::move(targets)), roots_(std::move(roots)), metrics_(metrics) {}

JobRunner::~JobRunner() { Stop(); }

void JobRunner::Start() {
  // At 0 from start-up, so that dashboards show 0 rather than no data before the first event.
  metrics_->Counter("r1r_orchestrator_learner_recoveries_total", "Phases resumed after a learner restart.");
  metrics_->Counter("r1r_orchestrator_actor_recoveries_total", "Generations retried after an actor restart.");
  for (const char* outcome : {"succeeded", "failed"}) {
    metrics_->Counter("r1r_orchestrator_jobs_total", "Jobs finished, by outcome.", {{"outcome", outcome}});
  }
  // Histograms too: a rate() needs a sample before the first step, or a short job leaves it empty.
  for (const char* part : {"generation", "reward", "learner", "weight_sync"}) {
    metrics_->Histogram("r1r_orchestrator_rl_part_seconds", "RL step time by part in seconds.", {{"part", part}});
  }
  metrics_->Histogram("r1r_orchestrator_rl_step_seconds", "Wall time of one RL step in seconds.");
  if (!targets_) {
    spdlog::warn("no --learner/--actors/--reward given: jobs are accepted and stored but not run");
    return;
  }
  thread_ = std::thread([this] { Loop(); });
}

void JobRunner::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void JobRunner::Loop() {
  while (!stop_) {
    auto id = store_->NextQueued();
    if (!id) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    auto job = store_->Update(*id, [](v1::Job& j) { j.set_state(v1::JOB_STATE_RUNNING); }, "job started");
    if (!job.ok()) continue;
    absl::Status s;
    // An exception from a reader or the model (bad data, a bad model file) fails this job with its
    // message instead of ending the process (which would rerun the job, and crash again, on restart).
    try {
      auto spec = config::ParseJobSpec(job->spec_yaml());
      if (!spec.ok()) {
        s = spec.status();
      } else if (s = ConfineSpecPaths(roots_, *spec); !s.ok()) {
        // a path the spec names is no longer allowed, or no longer a regular file
      } else if (auto cluster = Cluster::Connect(*targets_, &stop_); !cluster.ok()) {
        s = cluster.status();
      } else {
        Run run(store_, metrics_, *job, *spec, std::move(*cluster), &stop_);
        s = run.Execute();
      }
    } catch (const std::exception& e) {
      s = absl::InternalError(absl::StrCat("job runner: unexpected exception: ", e.what()));
      metrics_->Counter("r1r_orchestrator_job_exceptions_total",
                        "Exceptions caught in the job runner (the job failed with the message).")
          .Increment();
    }
    if (absl::IsCancelled(s)) continue;  // CancelJob already set the state
    if (absl::IsAborted(s) && stop_) return;  // resumes after restart
    (void)store_->Update(
        *id,
        [&](v1::Job& j) {
          j.set_state(s.ok() ? v1::JOB_STATE_SUCCEEDED : v1::JOB_STATE_FAILED);
          if (!s.ok()) j.set_error(std::string(s.message()));
        },
        s.ok() ? "job succeeded" : absl::StrCat("job failed: ", s.message()));
    metrics_->Counter("r1r_orchestrator_jobs_total", "Jobs finished, by outcome.",
                      {{"outcome", s.ok() ? "succeeded" : "failed"}})
        .Increment();
    if (!s.ok()) spdlog::error("job {} failed: {}", *id, s.message());
  }
}

}  // namespace r1r::orchestrator
