// r1r-reward: the reward aggregator; --judge-target points at r1r-judge.
#include <memory>

#include "common/rpc/auth.h"
#include "common/rpc/service_main.h"
#include "services/reward/reward_service.h"

int main(int argc, char** argv) {
  std::unique_ptr<r1r::reward::RewardServiceImpl> service;
  r1r::rpc::ServiceMain m;
  m.name = "reward";
  m.default_listen = "127.0.0.1:50054";
  m.default_metrics = "127.0.0.1:9104";
  m.declare_flags = [](r1r::config::Flags& f) {
    f.Value("judge-target", "127.0.0.1:50055", "r1r-judge address")
        .Value("judge-token-file", "", "bearer token for the judge (else $R1R_AUTH_TOKEN)")
        .Value("judge-timeout-seconds", "120", "deadline of one judge call")
        .Value("judge-attempts", "5", "attempts per judge call on UNAVAILABLE")
        .Value("judge-batch", "256", "items per judge call");
  };
  m.setup = [&](const r1r::config::Flags& f, r1r::rpc::Server& server) -> absl::Status {
    r1r::reward::JudgeClientOptions judge;
    judge.client.target = f.Get("judge-target");
    auto token = r1r::rpc::LoadToken(f.Get("judge-token-file"));
    if (!token.ok()) return token.status();
    judge.client.auth_token = *token;
    auto timeout = f.GetDouble("judge-timeout-seconds");
    auto attempts = f.GetIntInRange("judge-attempts", 1, 100);
    auto batch = f.GetIntInRange("judge-batch", 1, 1024);
    for (const absl::Status& s : {timeout.status(), attempts.status(), batch.status()}) {
      if (!s.ok()) return s;
    }
    judge.client.timeout = absl::Seconds(*timeout);
    judge.retry.max_attempts = static_cast<int>(*attempts);
    judge.batch_size = static_cast<int>(*batch);
    auto channel = r1r::rpc::MakeChannel(judge.client);
    if (!channel.ok()) return channel.status();
    service = std::make_unique<r1r::reward::RewardServiceImpl>(judge, *channel, &server.metrics());
    server.AddService(service.get());
    return absl::OkStatus();
  };
  return r1r::rpc::RunServiceMain(m, argc, argv);
}
