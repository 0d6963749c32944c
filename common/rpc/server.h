// One server bootstrap for every r1r binary: gRPC on --listen with health and reflection,
// Prometheus /metrics on --metrics-listen, optional bearer-token auth and TLS, per-RPC metrics,
// and a graceful drain on SIGTERM/SIGINT within a deadline.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <absl/time/time.h>

#include "common/config/flags.h"
#include "common/obs/metrics.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc

namespace r1r::rpc {

struct ServerOptions {
  std::string service_name;                 // "orchestrator", "actor", ...
  std::string listen = "0.0.0.0:0";
  std::string metrics_listen;               // empty: no /metrics
  std::string auth_token;                   // empty: no auth
  std::string tls_cert_file;                // both set: TLS
  std::string tls_key_file;
  int max_message_bytes = 64 << 20;
  absl::Duration drain_deadline = absl::Seconds(10);
};

// Declares --listen, --metrics-listen, --auth-token-file, --tls-cert, --tls-key,
// --max-message-mb and --drain-seconds.
void AddServerFlags(config::Flags& flags, const std::string& default_listen,
                    const std::string& default_metrics_listen);
absl::StatusOr<ServerOptions> ServerOptionsFromFlags(const config::Flags& flags, std::string service_name);

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();

  // Services must outlive the server.
  void AddService(grpc::Service* service);
  // Binds, starts serving and marks health SERVING. Writes "<service> listening on HOST:PORT
  // metrics on PORT" to the log; port() and metrics_port() are valid afterwards.
  absl::Status Start();
  int port() const { return port_; }
  int metrics_port() const { return metrics_.port(); }
  obs::Metrics& metrics() { return metrics_; }

  // Blocks until SIGTERM/SIGINT (or Shutdown from another thread), then marks health NOT_SERVING
  // and drains in-flight RPCs for at most drain_deadline.
  void Wait();
  void Shutdown();
  // Runs first when draining starts (e.g. to end long-lived streams so the drain is quick).
  void OnDrain(std::function<void()> fn) { on_drain_ = std::move(fn); }

 private:
  ServerOptions options_;
  obs::Metrics metrics_;
  std::vector<grpc::Service*> services_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::function<void()> on_drain_;
};

}  // namespace r1r::rpc
