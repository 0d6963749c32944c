// r1r-learner: SFT and StableReinforce steps, checkpoints, and the weights stream actors pull.
#include <memory>

#include "common/rpc/service_main.h"
#include "services/learner/learner_service.h"

int main(int argc, char** argv) {
  std::unique_ptr<r1r::learner::LearnerServiceImpl> service;
  r1r::rpc::ServiceMain m;
  m.name = "learner";
  m.default_listen = "0.0.0.0:50052";
  m.default_metrics = "0.0.0.0:9102";
  m.declare_flags = [](r1r::config::Flags& f) {
    f.Value("micro-batch", "8", "sequences per forward/backward pass (memory knob)")
        .Value("micro-batch-tokens", "0", "padded tokens per forward/backward pass, 0 = no cap (memory knob)");
  };
  m.setup = [&](const r1r::config::Flags& f, r1r::rpc::Server& server) -> absl::Status {
    r1r::learner::LearnerOptions o;
    auto micro = f.GetInt("micro-batch");
    if (!micro.ok()) return micro.status();
    if (*micro < 1) return absl::InvalidArgumentError("--micro-batch must be >= 1");
    o.micro_batch = *micro;
    auto tokens = f.GetInt("micro-batch-tokens");
    if (!tokens.ok()) return tokens.status();
    if (*tokens < 0) return absl::InvalidArgumentError("--micro-batch-tokens must be >= 0");
    o.micro_batch_tokens = *tokens;
    service = std::make_unique<r1r::learner::LearnerServiceImpl>(o, &server.metrics());
    server.AddService(service.get());
    return absl::OkStatus();
  };
  return r1r::rpc::RunServiceMain(m, argc, argv);
}
