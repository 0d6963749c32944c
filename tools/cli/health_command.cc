#include "tools/cli/health_command.h"

#include <cstdio>

#include <absl/strings/str_split.h>

#include "common/rpc/status.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tools/cli/cli_context.h"
#include "tools/cli/table.h"

namespace r1r::cli {

int HealthCommand(int argc, char** argv) {
  config::Flags flags;
  AddClientFlags(flags, "127.0.0.1:50051");
  flags.Value("service", "", "service name to check (empty = the whole server)");
  if (absl::Status s = flags.Parse(argc, argv, 2); !s.ok()) {
    std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
    return kExitUsage;
  }
  // --target may list several comma-separated servers.
  std::vector<std::string> targets = absl::StrSplit(flags.Get("target"), ',', absl::SkipEmpty());
  Table t({"TARGET", "STATUS"});
  int code = kExitOk;
  auto ctx = MakeContext(flags);
  if (!ctx.ok()) return Fail(ctx.status());
  for (const std::string& target : targets) {
    ctx->options.target = target;
    auto channel = rpc::MakeChannel(ctx->options);
    if (!channel.ok()) return Fail(channel.status());
    auto stub = grpc::health::v1::Health::NewStub(*channel);
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(flags.Get("service"));
    grpc::health::v1::HealthCheckResponse resp;
    grpc::ClientContext c;
    rpc::PrepareContext(c, ctx->options);
    grpc::Status st = stub->Check(&c, req, &resp);
    std::string status = st.ok() ? grpc::health::v1::HealthCheckResponse::ServingStatus_Name(resp.status())
                                 : "ERROR " + st.error_message();
    if (!st.ok()) {
      code = ExitCodeFor(rpc::FromGrpc(st));
    } else if (resp.status() != grpc::health::v1::HealthCheckResponse::SERVING) {
      code = kExitUnavailable;
    }
    if (flags.Has("json")) {
      std::printf("{\"target\":\"%s\",\"status\":\"%s\"}\n", target.c_str(), status.c_str());
    } else {
      t.Add({target, status});
    }
  }
  if (!flags.Has("json")) std::printf("%s", t.Render().c_str());
  return code;
}

}  // namespace r1r::cli
