// r1r-reward: see ../shared/DESIGN.md for its role.
#include "common/rpc/service_main.h"

int main(int argc, char** argv) {
  r1r::rpc::ServiceMain m;
  m.name = "reward";
  m.default_listen = "0.0.0.0:50054";
  m.default_metrics = "0.0.0.0:9104";
  m.setup = [](const r1r::config::Flags&, r1r::rpc::Server&) { return absl::OkStatus(); };
  return r1r::rpc::RunServiceMain(m, argc, argv);
}
