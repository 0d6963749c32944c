#include "common/rpc/service_main.h"

#include <cstdio>

#include "common/obs/log.h"

namespace r1r::rpc {

int RunServiceMain(const ServiceMain& m, int argc, char** argv) {
  obs::InitLogging(m.name);
  config::Flags flags;
  AddServerFlags(flags, m.default_listen, m.default_metrics);
  flags.Switch("help", "print flags and exit");
  if (m.declare_flags) m.declare_flags(flags);
  if (absl::Status s = flags.Parse(argc, argv); !s.ok()) {
    std::fprintf(stderr, "r1r-%s: %s\n", m.name.c_str(), std::string(s.message()).c_str());
    return 2;
  }
  if (flags.Has("help")) {
    std::printf("r1r-%s\n%s", m.name.c_str(), flags.Help().c_str());
    return 0;
  }
  auto options = ServerOptionsFromFlags(flags, m.name);
  if (!options.ok()) {
    spdlog::error("{}", options.status().message());
    return 2;
  }
  Server server(*options);
  if (absl::Status s = m.setup(flags, server); !s.ok()) {
    spdlog::error("setup failed: {}", s.message());
    return absl::IsInvalidArgument(s) ? 2 : 1;
  }
  if (absl::Status s = server.Start(); !s.ok()) {
    spdlog::error("{}", s.message());
    return 1;
  }
  server.Wait();
  return 0;
}

}  // namespace r1r::rpc
