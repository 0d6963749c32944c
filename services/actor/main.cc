// r1r-actor: a policy replica that samples rollouts and pulls new weights from the learner.
#include <cstdlib>
#include <memory>

#include <absl/strings/str_cat.h>
#include <absl/strings/str_split.h>

#include "common/files/paths.h"
#include "common/rpc/auth.h"
#include "common/rpc/service_main.h"
#include "services/actor/actor_service.h"
#include "services/actor/weight_receiver.h"

int main(int argc, char** argv) {
  std::unique_ptr<r1r::actor::WeightReceiver> receiver;  // outlives the service, which uses it
  std::unique_ptr<r1r::actor::ActorServiceImpl> service;
  r1r::rpc::ServiceMain m;
  m.name = "actor";
  m.default_listen = "127.0.0.1:50053";
  m.default_metrics = "127.0.0.1:9103";
  m.declare_flags = [](r1r::config::Flags& f) {
    f.Value("actor-id", "actor-0", "name reported in trajectories and GetInfo")
        .Value("max-batch", "16", "prompts per generation batch")
        .Value("dtype", "float32", "float32 | bfloat16")
        .Value("device", "cpu", "cpu | cuda | cuda:N")
        .Switch("cuda-graphs", "replay decode steps from CUDA graphs (with --device cuda; docs/operations.md)")
        .Value("learner-token-file", "", "bearer token for the learner (default: R1R_AUTH_TOKEN)")
        .Value("learner-ca", "", "CA file to verify the learner's TLS certificate")
        .Value("weight-sync-timeout-seconds", "600", "deadline of one weight pull")
        .Value("learner-targets", "",
               "comma-separated learner addresses LoadWeights may pull from, host:port or host:* "
               "(default: $R1R_LEARNER_TARGETS, else 127.0.0.1:*,localhost:*,[::1]:*)")
        .Value("work-root", ".", "LoadWeights.model_dir and images may lie under this directory (the learner's --work-root)")
        .Value("data-root", "", "images may lie under these comma-separated directories "
                                "(default: $R1R_DATA_ROOT, else the working directory)")
        .Value("weight-sync-store", "",
               "host:port of the learner's weight sync store (its --weight-sync-store; docs/operations.md). "
               "Empty: weights come only over the gRPC stream")
        .Value("weight-sync-backend", "gloo", "gloo (CPU) | nccl (receives on --device, a cuda device)")
        .Value("weight-sync-bucket-mb", "64", "MiB per broadcast call: the learner's value (1..2048)")
        .Value("weight-sync-group-timeout-seconds", "30", "the learner's value (1..3600)")
        .Value("weight-sync-wait-seconds", "60",
               "how long LoadWeights waits in the group for the learner's current weights before pulling the "
               "stream (1..3600)");
  };
  m.setup = [&](const r1r::config::Flags& f, r1r::rpc::Server& server) -> absl::Status {
    r1r::actor::ActorOptions o;
    o.actor_id = f.Get("actor-id");
    if (o.actor_id.empty()) return absl::InvalidArgumentError("--actor-id must not be empty");
    auto max_batch = f.GetIntInRange("max-batch", 1, 1024);
    if (!max_batch.ok()) return max_batch.status();
    o.max_batch = *max_batch;
    o.dtype = f.Get("dtype");
    o.device = f.Get("device");
    o.cuda_graphs = f.Has("cuda-graphs");
    if (o.cuda_graphs && o.device.rfind("cuda", 0) != 0) {
      return absl::InvalidArgumentError("--cuda-graphs needs --device cuda (it is " + o.device + ")");
    }
    auto token = r1r::rpc::LoadToken(f.Get("learner-token-file"));
    if (!token.ok()) return token.status();
    o.learner.auth_token = *token;
    o.learner.tls_ca_file = f.Get("learner-ca");
    auto timeout = f.GetDouble("weight-sync-timeout-seconds");
    if (!timeout.ok()) return timeout.status();
    if (!(*timeout > 0)) return absl::InvalidArgumentError("--weight-sync-timeout-seconds must be > 0");
    o.learner.timeout = absl::Seconds(*timeout);
    std::string targets = f.Get("learner-targets");
    if (const char* env = std::getenv("R1R_LEARNER_TARGETS"); targets.empty() && env != nullptr) targets = env;
    if (targets.empty()) targets = "127.0.0.1:*,localhost:*,[::1]:*";
    o.learner_targets = absl::StrSplit(targets, ',', absl::SkipWhitespace());
    if (o.learner_targets.empty()) return absl::InvalidArgumentError("--learner-targets must name at least one learner");
    auto read_dirs = r1r::files::RootFlag("data-root", f.Get("data-root"), "R1R_DATA_ROOT", ".");
    read_dirs.emplace_back("work-root", f.Get("work-root"));
    auto read_roots = r1r::files::Roots::Make(read_dirs);
    if (!read_roots.ok()) return read_roots.status();
    o.read_roots = *read_roots;
    auto sync = r1r::actor::ParseWeightSyncFlags(f, o.device);
    if (!sync.ok()) return sync.status();
    if (sync->has_value()) {
      auto started = r1r::actor::WeightReceiver::Start(**sync, o.actor_id, server.metrics());
      if (!started.ok()) return started.status();
      receiver = std::move(*started);
      o.weight_receiver = receiver.get();
    }
    service = std::make_unique<r1r::actor::ActorServiceImpl>(o, &server.metrics());
    server.AddService(service.get());
    return absl::OkStatus();
  };
  return r1r::rpc::RunServiceMain(m, argc, argv);
}
