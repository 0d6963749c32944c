#include "services/orchestrator/cluster.h"

#include <thread>

#include <absl/strings/str_cat.h>

#include "common/rpc/request_limits.h"
#include "common/rpc/status.h"

namespace r1r::orchestrator {
namespace {

// Training steps and generation of a whole rollout can take minutes on a CPU.
constexpr absl::Duration kStepTimeout = absl::Minutes(30);
constexpr absl::Duration kShortTimeout = absl::Minutes(2);

// The reward aggregator keeps no state: while it restarts (about 2 minutes of UNAVAILABLE), calls wait
// for it instead of failing the job, unless the orchestrator itself is stopping.
rpc::RetryPolicy RestartTolerant(const std::atomic<bool>* stopping) {
  rpc::RetryPolicy p;
  p.max_attempts = 30;  // 0.2 + 0.4 + 0.8 + 1.6 + 3.2 s, then 5 s apart: about 130 s in all
  if (stopping != nullptr) p.give_up = [stopping] { return stopping->load(); };
  return p;
}

absl::Status Annotate(const grpc::Status& s, const std::string& what) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), absl::StrCat(what, ": ", s.error_message()));
}

}  // namespace

rpc::ClientOptions Cluster::Options(const std::string& target, absl::Duration timeout) const {
  rpc::ClientOptions o;
  o.target = target;
  o.auth_token = targets_.auth_token;
  o.timeout = timeout;
  o.max_message_bytes = 256 << 20;
  return o;
}

absl::StatusOr<std::unique_ptr<Cluster>> Cluster::Connect(const ClusterTargets& targets,
                                                          const std::atomic<bool>* stopping) {
  if (targets.learner.empty() || targets.actors.empty() || targets.reward.empty()) {
    return absl::FailedPreconditionError(
        "the orchestrator needs --learner, --actors and --reward to run jobs (see r1r-orchestrator --help)");
  }
  std::unique_ptr<Cluster> c(new Cluster());
  c->targets_ = targets;
  c->stopping_ = stopping;
  auto channel = [&](const std::string& t) { return rpc::MakeChannel(c->Options(t, kShortTimeout)); };
  auto learner = channel(targets.learner);
  if (!learner.ok()) return learner.status();
  c->learner_ = v1::Learner::NewStub(*learner);
  for (const auto& a : targets.actors) {
    auto ch = channel(a);
    if (!ch.ok()) return ch.status();
    c->actors_.push_back(v1::RolloutActor::NewStub(*ch));
  }
  auto reward = channel(targets.reward);
  if (!reward.ok()) return reward.status();
  c->reward_ = v1::RewardAggregator::NewStub(*reward);
  return c;
}

absl::StatusOr<v1::LearnerState> Cluster::InitLearner(const v1::InitRequest& req) {
  v1::LearnerState state;
  grpc::Status s = rpc::CallWithRetry(Options(targets_.learner, kStepTimeout), {}, [&](grpc::ClientContext& ctx) {
    return learner_->Init(&ctx, req, &state);
  });
  if (!s.ok()) return Annotate(s, "learner Init");
  return state;
}

absl::StatusOr<v1::LearnerState> Cluster::LearnerState() {
  v1::LearnerState state;
  grpc::ClientContext ctx;
  rpc::PrepareContext(ctx, Options(targets_.learner, kShortTimeout));
  grpc::Status s = learner_->GetState(&ctx, v1::GetStateRequest(), &state);
  if (!s.ok()) return Annotate(s, "learner GetState");
  return state;
}

absl::StatusOr<v1::StepMetrics> Cluster::SftStep(const v1::SftStepRequest& req) {
  v1::StepMetrics m;
  grpc::Status s = rpc::CallWithRetry(Options(targets_.learner, kStepTimeout), {}, [&](grpc::ClientContext& ctx) {
    return learner_->SftStep(&ctx, req, &m);
  });
  if (!s.ok()) return Annotate(s, "learner SftStep");
  return m;
}

absl::StatusOr<v1::StepMetrics> Cluster::RlStep(const v1::ExperienceBatch& req) {
  v1::StepMetrics m;
  grpc::Status s = rpc::CallWithRetry(Options(targets_.learner, kStepTimeout), {}, [&](grpc::ClientContext& ctx) {
    return learner_->RlStep(&ctx, req, &m);
  });
  if (!s.ok()) return Annotate(s, "learner RlStep");
  return m;
}

absl::StatusOr<std::string> Cluster::SaveCheckpoint(int64_t data_cursor, const std::string& export_dir) {
  v1::SaveCheckpointRequest req;
  req.set_data_cursor(data_cursor);
  req.set_export_dir(export_dir);
  v1::SaveCheckpointResponse resp;
  grpc::Status s = rpc::CallWithRetry(Options(targets_.learner, kStepTimeout), {}, [&](grpc::ClientContext& ctx) {
    return learner_->SaveCheckpoint(&ctx, req, &resp);
  });
  if (!s.ok()) return Annotate(s, "learner SaveCheckpoint");
  return resp.path();
}

absl::StatusOr<std::vector<int64_t>> Cluster::ActorVersions() {
  std::vector<int64_t> versions;
  for (size_t i = 0; i < actors_.size(); ++i) {
    v1::ActorInfo info;
    grpc::ClientContext ctx;
    rpc::PrepareContext(ctx, Options(targets_.actors[i], kShortTimeout));
    grpc::Status s = actors_[i]->GetInfo(&ctx, v1::ActorInfoRequest(), &info);
    if (!s.ok()) return Annotate(s, absl::StrCat("actor ", targets_.actors[i], " GetInfo"));
    versions.push_back(info.policy_version());
  }
  return versions;
}

absl::StatusOr<double> Cluster::SyncActors(int64_t version, const std::string& model_dir) {
  std::vector<absl::Status> errors(actors_.size());
  std::vector<double> seconds(actors_.size(), 0);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < actors_.size(); ++i) {
    threads.emplace_back([&, i] {
      v1::LoadWeightsRequest req;
      req.set_learner_target(targets_.learner);
      req.set_version(version);
      req.set_model_dir(model_dir);
      v1::LoadWeightsResponse resp;
      grpc::Status s = rpc::CallWithRetry(Options(targets_.actors[i], kStepTimeout), {}, [&](grpc::ClientContext& ctx) {
        return actors_[i]->LoadWeights(&ctx, req, &resp);
      });
      errors[i] = Annotate(s, absl::StrCat("actor ", targets_.actors[i], " LoadWeights v", version));
      seconds[i] = resp.seconds();
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors) {
    if (!e.ok()) return e;
  }
  return *std::max_element(seconds.begin(), seconds.end());
}

absl::StatusOr<std::vector<v1::Trajectory>> Cluster::Generate(const std::vector<v1::Prompt>& prompts,
                                                              const v1::SamplingParams& sampling, int64_t version) {
  const size_t n_actors = actors_.size();
  std::vector<std::vector<v1::Trajectory>> per_actor(n_actors);
  std::vector<absl::Status> errors(n_actors);
  std::vector<std::thread> threads;
  const size_t chunk = (prompts.size() + n_actors - 1) / n_actors;
  for (size_t a = 0; a < n_actors; ++a) {
    const size_t begin = a * chunk, end = std::min(prompts.size(), begin + chunk);
    if (begin >= end) continue;
    threads.emplace_back([&, a, begin, end] {
      // Calls of at most the actor's request limit: a held-out set with votes can be far larger.
      for (size_t part = begin; part < end && errors[a].ok(); part += rpc::kMaxPromptsPerGenerate) {
        const size_t part_end = std::min(end, part + rpc::kMaxPromptsPerGenerate);
        v1::GenerateRolloutsRequest req;
        for (size_t i = part; i < part_end; ++i) *req.add_prompts() = prompts[i];
        *req.mutable_sampling() = sampling;
        req.set_expected_policy_version(version);
        std::vector<v1::Trajectory> got;
        // A server stream cannot be retried half-way; retry the whole call on UNAVAILABLE.
        grpc::Status s = rpc::CallWithRetry(Options(targets_.actors[a], kStepTimeout), {}, [&](grpc::ClientContext& ctx) {
          got.clear();
          auto reader = actors_[a]->GenerateRollouts(&ctx, req);
          v1::Trajectory t;
          while (reader->Read(&t)) got.push_back(t);
          return reader->Finish();
        });
        errors[a] = Annotate(s, absl::StrCat("actor ", targets_.actors[a], " GenerateRollouts"));
        if (errors[a].ok() && got.size() != part_end - part) {
          errors[a] = absl::DataLossError(absl::StrCat("actor ", targets_.actors[a], " returned ", got.size(),
                                                       " trajectories for ", part_end - part, " prompts"));
        }
        for (auto& t : got) per_actor[a].push_back(std::move(t));
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors) {
    if (!e.ok()) return e;
  }
  // Actors stream in completion order; restore the prompt order by id.
  std::map<std::string, v1::Trajectory> by_id;
  for (auto& list : per_actor) {
    for (auto& t : list) by_id[t.prompt_id()] = std::move(t);
  }
  std::vector<v1::Trajectory> out;
  out.reserve(prompts.size());
  for (const auto& p : prompts) {
    auto it = by_id.find(p.prompt_id());
    if (it == by_id.end()) return absl::DataLossError(absl::StrCat("no trajectory for prompt ", p.prompt_id()));
    if (it->second.policy_version() != version) {
      return absl::FailedPreconditionError(absl::StrCat("trajectory of version ", it->second.policy_version(),
                                                        " in a rollout of version ", version));
    }
    out.push_back(std::move(it->second));
  }
  return out;
}

absl::StatusOr<std::vector<v1::RewardBreakdown>> Cluster::Score(const std::vector<v1::Trajectory>& trajectories,
                                                                const v1::RewardWeights& weights) {
  std::vector<v1::RewardBreakdown> out;
  out.reserve(trajectories.size());
  for (size_t part = 0; part < trajectories.size(); part += rpc::kMaxTrajectoriesPerScore) {
    const size_t part_end = std::min(trajectories.size(), part + rpc::kMaxTrajectoriesPerScore);
    v1::ScoreTrajectoriesRequest req;
    for (size_t i = part; i < part_end; ++i) *req.add_trajectories() = trajectories[i];
    *req.mutable_weights() = weights;
    v1::ScoreTrajectoriesResponse resp;
    grpc::Status s = rpc::CallWithRetry(Options(targets_.reward, kStepTimeout), RestartTolerant(stopping_), [&](grpc::ClientContext& ctx) {
      return reward_->ScoreTrajectories(&ctx, req, &resp);
    });
    if (!s.ok()) return Annotate(s, "reward ScoreTrajectories");
    if (resp.rewards_size() != req.trajectories_size()) {
      return absl::DataLossError(absl::StrCat("reward returned ", resp.rewards_size(), " scores for ",
                                              req.trajectories_size(), " trajectories"));
    }
    out.insert(out.end(), resp.rewards().begin(), resp.rewards().end());
  }
  return out;
}

}  // namespace r1r::orchestrator
