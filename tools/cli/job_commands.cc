#include "tools/cli/job_commands.h"

#include <cstdio>
#include <iostream>

#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>
#include <absl/time/time.h>
#include <google/protobuf/util/json_util.h>

#include "common/config/job_spec.h"
#include "common/config/memory_plan.h"
#include "common/config/plan.h"
#include "common/files/paths.h"
#include "common/rpc/request_limits.h"
#include "common/rpc/status.h"
#include "r1r/v1/jobs.grpc.pb.h"
#include "tools/cli/cli_context.h"
#include "tools/cli/table.h"

namespace r1r::cli {
namespace {

constexpr char kDefaultTarget[] = "127.0.0.1:50051";

std::string Json(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, opts);
  return out;
}

std::string StateName(v1::JobState s) {
  std::string n = v1::JobState_Name(s);
  return n.rfind("JOB_STATE_", 0) == 0 ? n.substr(10) : n;
}

std::string PhaseName(v1::Phase p) {
  std::string n = v1::Phase_Name(p);
  return n.rfind("PHASE_", 0) == 0 ? n.substr(6) : n;
}

std::string Time(int64_t unix_ms) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMillis(unix_ms), absl::UTCTimeZone());
}

std::string CurrentPhase(const v1::Job& job) {
  for (const auto& p : job.phases()) {
    if (p.state() == v1::JOB_STATE_RUNNING) return PhaseName(p.phase());
  }
  return "-";
}

// Parses flags (client flags + `extra`), builds the context, and checks the positional count.
struct Parsed {
  config::Flags flags;
  CliContext ctx;
};

absl::StatusOr<Parsed> Parse(int argc, char** argv, size_t positionals, const std::string& usage,
                             void (*extra)(config::Flags&) = nullptr) {
  Parsed p;
  AddClientFlags(p.flags, kDefaultTarget);
  if (extra) extra(p.flags);
  if (absl::Status s = p.flags.Parse(argc, argv, 2); !s.ok()) return s;
  if (p.flags.positionals().size() != positionals) {
    return absl::InvalidArgumentError(absl::StrCat("usage: ", usage, "\n", p.flags.Help()));
  }
  auto ctx = MakeContext(p.flags);
  if (!ctx.ok()) return ctx.status();
  p.ctx = *ctx;
  return p;
}

int UsageOrFail(const absl::Status& s) {
  if (absl::IsInvalidArgument(s)) {
    std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
    return kExitUsage;
  }
  return Fail(s);
}

void PrintJob(const v1::Job& job) {
  std::printf("id:       %s\nname:     %s\nstate:    %s\ncreated:  %s UTC\nupdated:  %s UTC\nwork dir: %s\n",
              job.id().c_str(), job.name().c_str(), StateName(job.state()).c_str(), Time(job.created_unix_ms()).c_str(),
              Time(job.updated_unix_ms()).c_str(), job.work_dir().c_str());
  if (!job.error().empty()) std::printf("error:    %s\n", job.error().c_str());
  Table t({"PHASE", "STATE", "STEP", "SECONDS", "METRICS"});
  for (const auto& p : job.phases()) {
    std::string metrics;
    for (const auto& [k, v] : p.metrics()) absl::StrAppendFormat(&metrics, "%s%s=%.4g", metrics.empty() ? "" : " ", k, v);
    t.Add({PhaseName(p.phase()), StateName(p.state()),
           p.total_steps() ? absl::StrCat(p.step(), "/", p.total_steps()) : absl::StrCat(p.step()),
           absl::StrFormat("%.1f", p.wall_seconds()), metrics});
  }
  std::printf("%s", t.Render().c_str());
}

}  // namespace

int SubmitCommand(int argc, char** argv) {
  auto p = Parse(argc, argv, 1, "r1r submit JOB.yaml [--dry-run] [--server-path]", [](config::Flags& f) {
    f.Switch("dry-run", "validate and print the resolved plan; store nothing")
        .Switch("server-path", "send the path for the orchestrator to read instead of the file's content");
  });
  if (!p.ok()) return UsageOrFail(p.status());
  const std::string path = p->flags.positionals()[0];
  v1::SubmitJobRequest req;
  if (p->flags.Has("server-path")) {
    req.set_spec_path(path);
  } else {
    // A regular file of bounded size, opened without blocking: `r1r submit /dev/stdin`-style FIFOs and
    // devices such as /dev/zero used to hang the CLI or read without end.
    auto text = files::ReadRegularFile(path, rpc::kMaxSpecBytes);
    if (!text.ok()) return Fail(text.status());
    req.set_spec_yaml(*text);
  }
  req.set_dry_run(p->flags.Has("dry-run"));
  if (req.dry_run() && !p->flags.Has("server-path")) {
    // Validated and planned locally: no orchestrator needed to check a spec.
    auto spec = config::ParseJobSpec(req.spec_yaml());
    if (!spec.ok()) return Fail(spec.status());
    // The memory plan's verdict: a learner that cannot fit its GPUs is refused, naming the knob.
    const absl::Status fits = config::CheckLearnerFits(*spec);
    const std::string plan = config::DescribePlan(*spec);
    if (p->ctx.json) {
      // One JSON object on the last line: memory.learner.{per_gpu_bytes, gpu_memory_bytes, fits, terms}.
      std::printf("%s\n", config::PlanJson(*spec, plan).c_str());
    } else {
      std::printf("%s (dry run; nothing submitted)\n%s", fits.ok() ? "spec is valid" : "spec is refused", plan.c_str());
    }
    if (!fits.ok()) return Fail(fits);
    return kExitOk;
  }
  auto stub = v1::JobService::NewStub(p->ctx.channel);
  v1::SubmitJobResponse resp;
  grpc::Status st = rpc::CallWithRetry(p->ctx.options, {}, [&](grpc::ClientContext& c) {
    return stub->SubmitJob(&c, req, &resp);
  });
  if (!st.ok()) return Fail(rpc::FromGrpc(st));
  if (p->ctx.json) {
    std::printf("%s\n", Json(resp).c_str());
  } else if (req.dry_run()) {
    std::printf("spec is valid (dry run; nothing submitted)\n%s", resp.plan().c_str());
  } else {
    std::printf("%s\n", resp.job().id().c_str());
  }
  return kExitOk;
}

int ListCommand(int argc, char** argv) {
  auto p = Parse(argc, argv, 0, "r1r list [--state RUNNING] [--limit N]", [](config::Flags& f) {
    f.Value("state", "", "only jobs in this state (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)")
        .Value("limit", "100", "at most this many jobs");
  });
  if (!p.ok()) return UsageOrFail(p.status());
  v1::ListJobsRequest req;
  if (const std::string& s = p->flags.Get("state"); !s.empty()) {
    v1::JobState state;
    if (!v1::JobState_Parse("JOB_STATE_" + s, &state)) return UsageOrFail(absl::InvalidArgumentError("--state: unknown state " + s));
    req.set_state_filter(state);
  }
  auto limit = p->flags.GetInt("limit");
  if (!limit.ok()) return UsageOrFail(limit.status());
  req.set_page_size(static_cast<int32_t>(*limit));
  auto stub = v1::JobService::NewStub(p->ctx.channel);
  v1::ListJobsResponse resp;
  grpc::Status st = rpc::CallWithRetry(p->ctx.options, {}, [&](grpc::ClientContext& c) {
    return stub->ListJobs(&c, req, &resp);
  });
  if (!st.ok()) return Fail(rpc::FromGrpc(st));
  if (p->ctx.json) {
    std::printf("%s\n", Json(resp).c_str());
    return kExitOk;
  }
  Table t({"ID", "NAME", "STATE", "PHASE", "UPDATED (UTC)"});
  for (const auto& job : resp.jobs()) {
    t.Add({job.id(), job.name(), StateName(job.state()), CurrentPhase(job), Time(job.updated_unix_ms())});
  }
  std::printf("%s", t.Render().c_str());
  return kExitOk;
}

int StatusCommand(int argc, char** argv) {
  auto p = Parse(argc, argv, 1, "r1r status JOB_ID");
  if (!p.ok()) return UsageOrFail(p.status());
  v1::GetJobRequest req;
  req.set_id(p->flags.positionals()[0]);
  auto stub = v1::JobService::NewStub(p->ctx.channel);
  v1::Job job;
  grpc::Status st = rpc::CallWithRetry(p->ctx.options, {}, [&](grpc::ClientContext& c) {
    return stub->GetJob(&c, req, &job);
  });
  if (!st.ok()) return Fail(rpc::FromGrpc(st));
  if (p->ctx.json) {
    std::printf("%s\n", Json(job).c_str());
  } else {
    PrintJob(job);
  }
  return kExitOk;
}

int CancelCommand(int argc, char** argv) {
  auto p = Parse(argc, argv, 1, "r1r cancel JOB_ID");
  if (!p.ok()) return UsageOrFail(p.status());
  v1::CancelJobRequest req;
  req.set_id(p->flags.positionals()[0]);
  auto stub = v1::JobService::NewStub(p->ctx.channel);
  v1::Job job;
  grpc::Status st = rpc::CallWithRetry(p->ctx.options, {}, [&](grpc::ClientContext& c) {
    return stub->CancelJob(&c, req, &job);
  });
  if (!st.ok()) return Fail(rpc::FromGrpc(st));
  if (p->ctx.json) {
    std::printf("%s\n", Json(job).c_str());
  } else {
    std::printf("%s %s\n", job.id().c_str(), StateName(job.state()).c_str());
  }
  return kExitOk;
}

int WatchCommand(int argc, char** argv) {
  auto p = Parse(argc, argv, 1, "r1r watch JOB_ID  (exit 0 SUCCEEDED, 1 FAILED, 7 CANCELLED)");
  if (!p.ok()) return UsageOrFail(p.status());
  const std::string id = p->flags.positionals()[0];
  auto stub = v1::JobService::NewStub(p->ctx.channel);
  int64_t seq = 0;
  v1::JobState last = v1::JOB_STATE_UNSPECIFIED;
  // The stream has no deadline; on UNAVAILABLE (orchestrator restart) reconnect from the last seq.
  for (int reconnects = 0; reconnects < 30; ++reconnects) {
    grpc::ClientContext c;
    if (!p->ctx.options.auth_token.empty()) c.AddMetadata("authorization", "Bearer " + p->ctx.options.auth_token);
    v1::WatchJobRequest req;
    req.set_id(id);
    req.set_after_seq(seq);
    auto reader = stub->WatchJob(&c, req);
    v1::JobEvent ev;
    while (reader->Read(&ev)) {
      seq = ev.seq();
      last = ev.state();
      if (p->ctx.json) {
        std::printf("%s\n", Json(ev).c_str());
      } else {
        std::printf("%s  %-9s %-9s %s\n", Time(ev.unix_ms()).c_str(), StateName(ev.state()).c_str(),
                    ev.phase() ? PhaseName(ev.phase()).c_str() : "", ev.message().c_str());
      }
      std::fflush(stdout);
    }
    grpc::Status st = reader->Finish();
    if (st.ok()) break;
    if (st.error_code() != grpc::StatusCode::UNAVAILABLE) return Fail(rpc::FromGrpc(st));
    absl::SleepFor(absl::Seconds(1));
  }
  switch (last) {
    case v1::JOB_STATE_SUCCEEDED: return kExitOk;
    case v1::JOB_STATE_CANCELLED: return kExitCancelled;
    default: return kExitFailure;
  }
}

}  // namespace r1r::cli
