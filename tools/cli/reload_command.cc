#include "tools/cli/reload_command.h"

#include <cstdio>
#include <string>

#include <absl/strings/str_cat.h>
#include <nlohmann/json.hpp>

#include "common/config/flags.h"
#include "common/rpc/status.h"
#include "r1r/v1/serve.grpc.pb.h"
#include "tools/cli/cli_context.h"
#include "tools/cli/table.h"

namespace r1r::cli {

int ReloadCommand(int argc, char** argv) {
  config::Flags f;
  AddClientFlags(f, "127.0.0.1:50056");
  f.Value("model-dir", "", "published checkpoint as the server sees it (empty: the directory it serves)")
      .Switch("allow-older", "accept a lower policy version (a rollback)")
      .Switch("help", "print this help");
  const std::string usage = "r1r reload [--model-dir DIR] [--allow-older] [--target host:port] [--json]";
  if (std::optional<int> stop = ParseVerbFlags(f, argc, argv, usage)) return *stop;
  auto ctx = MakeContext(f);
  if (!ctx.ok()) return Fail(ctx.status());
  v1::ReloadRequest req;
  req.set_model_dir(f.Get("model-dir"));
  req.set_allow_older(f.Has("allow-older"));
  v1::ReloadResponse resp;
  auto stub = v1::RewardModel::NewStub(ctx->channel);
  grpc::ClientContext call;
  rpc::PrepareContext(call, ctx->options);
  // No retry: a reload is not idempotent in effect (another publish may land in between).
  const grpc::Status st = stub->Reload(&call, req, &resp);
  if (!st.ok()) return Fail(rpc::FromGrpc(st));
  if (ctx->json) {
    const nlohmann::json j = {{"model_dir", resp.model_dir()},
                              {"previous_version", resp.previous_version()},
                              {"policy_version", resp.policy_version()},
                              {"seconds", resp.seconds()}};
    std::printf("%s\n", j.dump().c_str());
    return kExitOk;
  }
  Table t({"MODEL DIR", "FROM VERSION", "TO VERSION", "SECONDS"});
  t.Add({resp.model_dir(), absl::StrCat(resp.previous_version()), absl::StrCat(resp.policy_version()),
         absl::StrCat(resp.seconds())});
  std::printf("%s\n", t.Render().c_str());
  return kExitOk;
}

}  // namespace r1r::cli
