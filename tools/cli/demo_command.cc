#include "tools/cli/demo_command.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>
#include <nlohmann/json.hpp>

#include "common/config/flags.h"
#include "common/files/paths.h"
#include "common/files/remove_tree.h"
#include "common/proc/process.h"
#include "common/rpc/client.h"
#include "common/rpc/status.h"
#include "r1r/v1/jobs.grpc.pb.h"
#include "r1r/v1/serve.grpc.pb.h"
#include "tools/cli/cli_context.h"
#include "tools/cli/table.h"

namespace r1r::cli {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

std::string DefaultBinDir() {
  if (const char* env = std::getenv("R1R_BIN_DIR")) return env;
  // <build>/tools/cli/r1r -> <build>/services
  return (fs::canonical("/proc/self/exe").parent_path().parent_path().parent_path() / "services").string();
}

std::string Addr(const proc::Process& p) { return absl::StrCat("127.0.0.1:", p.port()); }

// The demo's processes, stopped with SIGTERM (then SIGKILL) in reverse start order.
class Fleet {
 public:
  Fleet(std::string bin_dir, std::string log_dir) : bin_dir_(std::move(bin_dir)), log_dir_(std::move(log_dir)) {
    // Debian's LibTorch runs elementwise ops on an OpenMP pool and matrix products on OpenBLAS's own
    // pthread pool; with both sized to the cores they spin against each other and a tiny-model SFT step
    // takes twice as long (tools/bench/sft_learnability_bench, --threads 1 vs 2). One OpenMP thread per
    // service, unless the user chose otherwise; the children inherit it. OpenBLAS falls back to
    // OMP_NUM_THREADS when OPENBLAS_NUM_THREADS is unset, so that one is set to the cores explicitly.
    setenv("OPENBLAS_NUM_THREADS", std::to_string(std::max(1u, std::thread::hardware_concurrency())).c_str(),
           /*overwrite=*/0);
    setenv("OMP_NUM_THREADS", "1", /*overwrite=*/0);
  }
  ~Fleet() { StopAll(); }

  absl::StatusOr<proc::Process*> Start(const std::string& service, const std::string& name,
                                       std::vector<std::string> args) {
    std::vector<std::string> all = {"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"};
    all.insert(all.end(), args.begin(), args.end());
    auto p = proc::Process::Start(bin_dir_ + "/r1r-" + service, all, log_dir_ + "/" + name + ".log",
                                  absl::Seconds(60));
    if (!p.ok()) return p.status();
    processes_.emplace_back(name, std::make_unique<proc::Process>(std::move(*p)));
    std::fprintf(stderr, "  started %-13s grpc %s  metrics 127.0.0.1:%d\n", name.c_str(),
                 Addr(*processes_.back().second).c_str(), processes_.back().second->metrics_port());
    return processes_.back().second.get();
  }

  // Returns how many processes did not exit 0 after SIGTERM.
  int StopAll() {
    int unclean = 0;
    for (auto it = processes_.rbegin(); it != processes_.rend(); ++it) {
      it->second->Signal(SIGTERM);
      int code = it->second->Wait(absl::Seconds(30));
      if (code != 0) {
        ++unclean;
        std::fprintf(stderr, "  %s exited with %d\n", it->first.c_str(), code);
      }
    }
    processes_.clear();
    return unclean;
  }

 private:
  std::string bin_dir_, log_dir_;
  std::vector<std::pair<std::string, std::unique_ptr<proc::Process>>> processes_;
};

std::string Bar(int64_t step, int64_t total, int width = 24) {
  const int filled = total > 0 ? static_cast<int>(width * std::min<int64_t>(step, total) / total) : 0;
  std::string bar;
  for (int i = 0; i < width; ++i) bar += i < filled ? "#" : ".";
  return bar;
}

std::string PhaseName(v1::Phase p) {
  std::string n = v1::Phase_Name(p);
  return n.substr(6);
}

// Prints one line per event; progress events redraw the phase's bar in place on a terminal.
void ShowEvent(const v1::JobEvent& ev, bool tty, v1::Phase* last_progress_phase) {
  const bool progress = ev.has_progress() && ev.progress().total_steps() > 0 && ev.progress().state() == v1::JOB_STATE_RUNNING;
  if (progress) {
    const auto& p = ev.progress();
    std::string extra;
    for (const char* key : {"loss", "reward_mean", "accuracy", "format_rate"}) {
      if (auto it = p.metrics().find(key); it != p.metrics().end()) absl::StrAppendFormat(&extra, " %s %.3f", key, it->second);
    }
    const std::string line = absl::StrFormat("  %-9s [%s] %4d/%-4d %6.1fs%s", PhaseName(ev.phase()), Bar(p.step(), p.total_steps()),
                                             p.step(), p.total_steps(), p.wall_seconds(), extra);
    if (tty) {
      std::fprintf(stderr, "%s%s\033[K", *last_progress_phase == ev.phase() ? "\r" : "\n", line.c_str());
    } else if (p.step() == p.total_steps() || p.step() % 10 == 0) {
      std::fprintf(stderr, "%s\n", line.c_str());
    }
    *last_progress_phase = ev.phase();
    return;
  }
  if (tty && *last_progress_phase != v1::PHASE_UNSPECIFIED) std::fprintf(stderr, "\n");
  *last_progress_phase = v1::PHASE_UNSPECIFIED;
  std::fprintf(stderr, "  %s\n", ev.message().c_str());
}

// The first held-out-like sample of the demo's dataset, for the live Compare.
absl::StatusOr<nlohmann::json> FirstSample(const std::string& dataset_dir) {
  std::ifstream in(dataset_dir + "/pairs.jsonl");
  std::string line;
  if (!std::getline(in, line)) return absl::NotFoundError(absl::StrCat("no samples in ", dataset_dir));
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded()) return absl::DataLossError("bad first sample");
  return j;
}

}  // namespace

int DemoCommand(int argc, char** argv) {
  config::Flags f;
  f.Value("config", std::string(R1R_SOURCE_DIR) + "/configs/demo.yaml", "job spec to run")
      .Value("work-dir", "./r1r-demo", "where state, logs, checkpoints and metrics go (wiped first)")
      .Value("bin-dir", DefaultBinDir(), "folder holding the r1r-* service binaries")
      .Value("actors", "2", "number of rollout actors")
      .Switch("json", "print the final table as one JSON object on the last line");
  if (absl::Status s = f.Parse(argc, argv, 2); !s.ok()) {
    std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
    return kExitUsage;
  }
  const auto start = Clock::now();
  const std::string work = fs::absolute(f.Get("work-dir")).string();
  std::error_code ec;
  r1r::files::RemoveTree(work).IgnoreError();
  fs::create_directories(work + "/logs", ec);
  const bool tty = isatty(STDERR_FILENO);
  std::fprintf(stderr, "r1r demo: work dir %s, logs in %s/logs\n", work.c_str(), work.c_str());

  Fleet fleet(f.Get("bin-dir"), work + "/logs");
  auto judge = fleet.Start("judge", "judge", {"--backend", "rule"});
  if (!judge.ok()) return Fail(judge.status());
  auto reward = fleet.Start("reward", "reward", {"--judge-target", Addr(**judge)});
  if (!reward.ok()) return Fail(reward.status());
  // Every path the services are sent lies under the demo's work dir: it is their root (docs/security.md).
  auto learner = fleet.Start("learner", "learner", {"--work-root", work, "--data-root", work});
  if (!learner.ok()) return Fail(learner.status());
  std::string actors;
  auto n_actors = f.GetInt("actors");
  if (!n_actors.ok() || *n_actors < 1) return Fail(absl::InvalidArgumentError("--actors must be >= 1"));
  for (int i = 0; i < *n_actors; ++i) {
    auto actor = fleet.Start("actor", absl::StrCat("actor-", i),
                             {"--actor-id", absl::StrCat("actor-", i), "--work-root", work, "--data-root", work});
    if (!actor.ok()) return Fail(actor.status());
    absl::StrAppend(&actors, actors.empty() ? "" : ",", Addr(**actor));
  }
  auto orch = fleet.Start("orchestrator", "orchestrator",
                          {"--state-dir", work + "/state", "--work-root", work + "/jobs", "--data-root", work,
                           "--learner", Addr(**learner),
                           "--actors", actors, "--reward", Addr(**reward)});
  if (!orch.ok()) return Fail(orch.status());

  rpc::ClientOptions o;
  o.target = Addr(**orch);
  auto stub = v1::JobService::NewStub(*rpc::MakeChannel(o));
  v1::SubmitJobRequest submit;
  // The spec's text, read here: the orchestrator reads server-side paths only under its --data-root.
  auto spec_text = files::ReadRegularFile(f.Get("config"), 1 << 20);
  if (!spec_text.ok()) return Fail(spec_text.status());
  submit.set_spec_yaml(*spec_text);
  v1::SubmitJobResponse submitted;
  grpc::Status st = rpc::CallWithRetry(o, {}, [&](grpc::ClientContext& c) { return stub->SubmitJob(&c, submit, &submitted); });
  if (!st.ok()) return Fail(rpc::FromGrpc(st));
  const std::string id = submitted.job().id();
  std::fprintf(stderr, "submitted %s (%s)\n", id.c_str(), f.Get("config").c_str());

  // Follow the job to its end.
  v1::Phase last = v1::PHASE_UNSPECIFIED;
  {
    grpc::ClientContext c;
    v1::WatchJobRequest req;
    req.set_id(id);
    auto reader = stub->WatchJob(&c, req);
    v1::JobEvent ev;
    while (reader->Read(&ev)) ShowEvent(ev, tty, &last);
    if (tty) std::fprintf(stderr, "\n");
    (void)reader->Finish();
  }
  v1::Job job;
  v1::GetJobRequest get;
  get.set_id(id);
  st = rpc::CallWithRetry(o, {}, [&](grpc::ClientContext& c) { return stub->GetJob(&c, get, &job); });
  if (!st.ok()) return Fail(rpc::FromGrpc(st));
  if (job.state() != v1::JOB_STATE_SUCCEEDED) {
    std::fprintf(stderr, "job %s ended %s: %s (logs in %s/logs)\n", id.c_str(), v1::JobState_Name(job.state()).c_str(),
                 job.error().c_str(), work.c_str());
    fleet.StopAll();
    return kExitFailure;
  }

  // The final table.
  std::map<std::string, double> eval, seconds;
  for (const auto& p : job.phases()) {
    seconds[PhaseName(p.phase())] = p.wall_seconds();
    if (p.phase() == v1::PHASE_EVAL) eval.insert(p.metrics().begin(), p.metrics().end());
  }
  auto metric = [&](const std::string& k) { return eval.count(k) ? eval[k] : -1.0; };
  Table t({"stage", "accuracy", "format rate", "consistency rate"});
  for (const char* stage : {"before_sft", "after_sft", "after_rl"}) {
    t.Add({stage, absl::StrFormat("%.3f", metric(absl::StrCat(stage, ".accuracy"))),
           absl::StrFormat("%.3f", metric(absl::StrCat(stage, ".format_rate"))),
           absl::StrFormat("%.3f", metric(absl::StrCat(stage, ".consistency_rate")))});
  }
  std::printf("\nheld-out results (%s)\n%s", id.c_str(), t.Render().c_str());
  std::printf("voting@5 accuracy after RL: %.3f\n", metric("after_rl.voting_accuracy"));
  std::printf("phase wall seconds:");
  for (const auto& [k, v] : seconds) std::printf(" %s %.1f", k.c_str(), v);
  std::printf("\n");

  // One Compare from the live endpoint on the published checkpoint.
  nlohmann::json compare_json;
  const std::string published = job.work_dir() + "/published";
  auto serve = fleet.Start("serve", "serve", {"--model-dir", published, "--data-root", work});
  if (!serve.ok()) return Fail(serve.status());
  auto sample = FirstSample(job.work_dir() + "/data");
  if (sample.ok()) {
    rpc::ClientOptions so;
    so.target = Addr(**serve);
    so.timeout = absl::Minutes(2);
    auto serve_stub = v1::RewardModel::NewStub(*rpc::MakeChannel(so));
    v1::CompareRequest req;
    req.mutable_image()->set_path(job.work_dir() + "/data/" + (*sample)["image"].get<std::string>());
    req.set_question((*sample)["question"].get<std::string>());
    req.set_response1((*sample)["response1"].get<std::string>());
    req.set_response2((*sample)["response2"].get<std::string>());
    req.set_votes(1);
    v1::CompareResponse resp;
    st = rpc::CallWithRetry(so, {}, [&](grpc::ClientContext& c) { return serve_stub->Compare(&c, req, &resp); });
    if (!st.ok()) return Fail(rpc::FromGrpc(st));
    std::printf("\nlive Compare: %s\n  1: %s\n  2: %s\n  -> chose %d (label %d)\n  %s\n", req.question().c_str(),
                req.response1().c_str(), req.response2().c_str(), resp.choice(), (*sample)["label"].get<int>(),
                resp.reasoning_size() ? resp.reasoning(0).c_str() : "");
    compare_json = {{"choice", resp.choice()}, {"label", (*sample)["label"].get<int>()}};
  }
  const int unclean = fleet.StopAll();
  const double total = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("all processes stopped%s; total %.1fs; checkpoint and logs in %s\n", unclean ? " (some uncleanly)" : "",
              total, work.c_str());
  if (f.Has("json")) {
    nlohmann::json j;
    for (const auto& [k, v] : eval) j[k] = v;
    for (const auto& [k, v] : seconds) j["seconds." + k] = v;
    j["seconds.total"] = total;
    j["job_id"] = id;
    j["compare"] = compare_json;
    std::printf("%s\n", j.dump().c_str());
  }
  return unclean ? kExitFailure : kExitOk;
}

}  // namespace r1r::cli
