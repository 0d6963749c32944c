// The main() of every r1r service: logging, flags (the server's plus the service's own), server
// start, wait for SIGTERM, drain. A service only declares its flags and registers its services.
#pragma once

#include <functional>
#include <string>

#include <absl/status/status.h>

#include "common/config/flags.h"
#include "common/rpc/server.h"

namespace r1r::rpc {

struct ServiceMain {
  std::string name;                  // "orchestrator", ...
  std::string default_listen;        // "127.0.0.1:50051" (loopback: docs/security.md)
  std::string default_metrics;       // "127.0.0.1:9101"
  std::function<void(config::Flags&)> declare_flags;
  // Builds the service objects (they must live until `run` returns: keep them in captured state
  // owned by the caller or return them via the server's lifetime) and registers them.
  std::function<absl::Status(const config::Flags&, Server&)> setup;
};

// Returns the process exit code: 0 after a clean drain, 2 for bad flags, 1 for other failures.
int RunServiceMain(const ServiceMain& main, int argc, char** argv);

}  // namespace r1r::rpc
