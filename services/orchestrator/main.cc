// r1r-orchestrator: the JobService. Job records live under --state-dir and survive restarts.
#include <memory>

#include "common/jobs/job_store.h"
#include "common/rpc/service_main.h"
#include "services/orchestrator/job_service.h"

int main(int argc, char** argv) {
  std::unique_ptr<r1r::jobs::JobStore> store;
  std::unique_ptr<r1r::orchestrator::JobServiceImpl> jobs;
  r1r::rpc::ServiceMain m;
  m.name = "orchestrator";
  m.default_listen = "0.0.0.0:50051";
  m.default_metrics = "0.0.0.0:9101";
  m.declare_flags = [](r1r::config::Flags& f) {
    f.Value("state-dir", "./r1r-state", "directory for job records and events")
        .Value("work-root", "", "default parent of job work dirs (default <state-dir>/work)");
  };
  m.setup = [&](const r1r::config::Flags& f, r1r::rpc::Server& server) -> absl::Status {
    auto opened = r1r::jobs::JobStore::Open(f.Get("state-dir"));
    if (!opened.ok()) return opened.status();
    store = std::move(*opened);
    const std::string work_root = f.Has("work-root") ? f.Get("work-root") : f.Get("state-dir") + "/work";
    jobs = std::make_unique<r1r::orchestrator::JobServiceImpl>(store.get(), work_root);
    server.AddService(jobs.get());
    server.OnDrain([&] { jobs->StopWatchers(); });
    return absl::OkStatus();
  };
  return r1r::rpc::RunServiceMain(m, argc, argv);
}
