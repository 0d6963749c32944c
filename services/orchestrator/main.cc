// r1r-orchestrator: the JobService. Job records live under --state-dir and survive restarts.
#include <memory>

#include "common/files/paths.h"
#include "common/jobs/job_store.h"
#include "common/obs/log.h"
#include "common/rpc/auth.h"
#include "common/rpc/service_main.h"
#include "absl/strings/str_split.h"
#include "services/orchestrator/job_runner.h"
#include "services/orchestrator/job_service.h"
#include "services/orchestrator/orchestrator_metrics.h"

int main(int argc, char** argv) {
  std::unique_ptr<r1r::jobs::JobStore> store;
  std::unique_ptr<r1r::orchestrator::JobServiceImpl> jobs;
  std::unique_ptr<r1r::orchestrator::JobRunner> runner;
  std::unique_ptr<r1r::orchestrator::OrchestratorMetrics> metrics;
  r1r::rpc::ServiceMain m;
  m.name = "orchestrator";
  m.default_listen = "127.0.0.1:50051";
  m.default_metrics = "127.0.0.1:9101";
  m.declare_flags = [](r1r::config::Flags& f) {
    f.Value("state-dir", "./r1r-state", "directory for job records and events")
        .Value("work-root", "", "parent of job work dirs; a spec's work_dir must lie under it (default <state-dir>/work)")
        .Value("data-root", "", "spec_path, data.path, tokenizer.path and model.path must lie under these comma-separated "
                                "directories (default: $R1R_DATA_ROOT, else the working directory)")
        .Value("learner", "", "r1r-learner address (host:port); without it jobs are stored but not run")
        .Value("actors", "", "comma-separated r1r-actor addresses")
        .Value("reward", "", "r1r-reward address")
        .Value("cluster-token-file", "", "bearer token for the other services (else $R1R_AUTH_TOKEN)");
  };
  m.setup = [&](const r1r::config::Flags& f, r1r::rpc::Server& server) -> absl::Status {
    auto opened = r1r::jobs::JobStore::Open(f.Get("state-dir"));
    if (!opened.ok()) return opened.status();
    store = std::move(*opened);
    // Corrupt records were moved to <state-dir>/quarantine/ so that the others are served.
    const std::vector<std::string> quarantined = store->quarantined();
    for (const std::string& q : quarantined) spdlog::error("quarantined a corrupt job record: {}", q);
    metrics = std::make_unique<r1r::orchestrator::OrchestratorMetrics>(server.metrics());
    metrics->quarantined_records.Increment(static_cast<double>(quarantined.size()));
    const std::string work_root = !f.Get("work-root").empty() ? f.Get("work-root") : f.Get("state-dir") + "/work";
    r1r::orchestrator::SpecRoots roots;
    auto data_roots = r1r::files::Roots::Make(r1r::files::RootFlag("data-root", f.Get("data-root"), "R1R_DATA_ROOT", "."));
    if (!data_roots.ok()) return data_roots.status();
    auto work_roots = r1r::files::Roots::Make({{"work-root", work_root}});
    if (!work_roots.ok()) return work_roots.status();
    roots.data = *data_roots;
    roots.work = *work_roots;
    jobs = std::make_unique<r1r::orchestrator::JobServiceImpl>(store.get(), work_root, roots);
    server.AddService(jobs.get());
    std::optional<r1r::orchestrator::ClusterTargets> targets;
    if (!f.Get("learner").empty()) {
      targets.emplace();
      targets->learner = f.Get("learner");
      targets->actors = absl::StrSplit(f.Get("actors"), ',', absl::SkipEmpty());
      targets->reward = f.Get("reward");
      auto token = r1r::rpc::LoadToken(f.Get("cluster-token-file"));
      if (!token.ok()) return token.status();
      targets->auth_token = *token;
      if (targets->actors.empty() || targets->reward.empty()) {
        return absl::InvalidArgumentError("--learner needs --actors and --reward as well");
      }
    }
    runner = std::make_unique<r1r::orchestrator::JobRunner>(store.get(), targets, roots, metrics.get());
    runner->Start();
    server.OnDrain([&] {
      jobs->StopWatchers();
      runner->Stop();
    });
    return absl::OkStatus();
  };
  return r1r::rpc::RunServiceMain(m, argc, argv);
}
