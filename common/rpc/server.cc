#include "common/rpc/server.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <mutex>
#include <sstream>

#include <absl/strings/str_cat.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include "common/obs/log.h"
#include "common/rpc/auth.h"
#include "common/rpc/metrics_interceptor.h"

namespace r1r::rpc {
namespace {

// Self-pipe: the signal handler only writes a byte; Wait() reads it.
int g_signal_pipe[2] = {-1, -1};
std::once_flag g_signal_once;

void OnSignal(int) {
  const char b = 1;
  [[maybe_unused]] ssize_t n = write(g_signal_pipe[1], &b, 1);
}

void InstallSignalHandlers() {
  std::call_once(g_signal_once, [] {
    if (pipe2(g_signal_pipe, O_CLOEXEC) != 0) return;
    struct sigaction sa = {};
    sa.sa_handler = OnSignal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);
  });
}

// Drops the reflection plugin from one builder: with auth on, reflection would describe every
// service to callers without a token (its handlers cannot call Authorize).
class WithoutReflection final : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->erase(std::remove_if(plugins->begin(), plugins->end(),
                                  [](const auto& p) { return p->name().find("reflection") != std::string::npos; }),
                   plugins->end());
  }
};

// True for 127.0.0.0/8, [::1], localhost and unix sockets: addresses other hosts cannot reach.
bool IsLoopback(const std::string& listen) {
  if (listen.rfind("unix:", 0) == 0) return true;
  const std::string host = listen.substr(0, listen.rfind(':'));
  return host.rfind("127.", 0) == 0 || host == "[::1]" || host == "localhost";
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read '", path, "'"));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

void AddServerFlags(config::Flags& flags, const std::string& default_listen,
                    const std::string& default_metrics_listen) {
  flags.Value("listen", default_listen, "gRPC address host:port (port 0 = any free port)")
      .Value("metrics-listen", default_metrics_listen, "Prometheus /metrics address host:port; empty = off")
      .Value("auth-token-file", "", "file holding the bearer token (else $R1R_AUTH_TOKEN; empty = no auth)")
      .Value("tls-cert", "", "PEM certificate chain for TLS")
      .Value("tls-key", "", "PEM private key for TLS")
      .Value("max-message-mb", "64", "largest request or response in MiB")
      .Value("drain-seconds", "10", "how long SIGTERM waits for in-flight RPCs");
}

absl::StatusOr<ServerOptions> ServerOptionsFromFlags(const config::Flags& flags, std::string service_name) {
  ServerOptions o;
  o.service_name = std::move(service_name);
  o.listen = flags.Get("listen");
  o.metrics_listen = flags.Get("metrics-listen");
  auto token = LoadToken(flags.Get("auth-token-file"));
  if (!token.ok()) return token.status();
  o.auth_token = *token;
  o.tls_cert_file = flags.Get("tls-cert");
  o.tls_key_file = flags.Get("tls-key");
  if (o.tls_cert_file.empty() != o.tls_key_file.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key must be given together");
  }
  auto mb = flags.GetInt("max-message-mb");
  if (!mb.ok()) return mb.status();
  if (*mb < 1 || *mb > 2047) return absl::InvalidArgumentError("--max-message-mb must be in [1, 2047]");
  o.max_message_bytes = static_cast<int>(*mb << 20);
  auto drain = flags.GetDouble("drain-seconds");
  if (!drain.ok()) return drain.status();
  o.drain_deadline = absl::Seconds(*drain);
  return o;
}

Server::Server(ServerOptions options) : options_(std::move(options)), metrics_(options_.service_name) {}

Server::~Server() {
  if (server_) server_->Shutdown(std::chrono::system_clock::now());
}

void Server::AddService(grpc::Service* service) { services_.push_back(service); }

absl::Status Server::Start() {
  InstallSignalHandlers();
  std::shared_ptr<grpc::ServerCredentials> creds;
  if (!options_.tls_cert_file.empty()) {
    auto cert = ReadFile(options_.tls_cert_file);
    if (!cert.ok()) return cert.status();
    auto key = ReadFile(options_.tls_key_file);
    if (!key.ok()) return key.status();
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back({*key, *cert});
    creds = grpc::SslServerCredentials(ssl);
  } else {
    creds = grpc::InsecureServerCredentials();
  }
  SetServerToken(options_.auth_token);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  const bool reflection = options_.auth_token.empty();  // reflection follows auth: off when a token is required
  if (!reflection) builder.SetOption(std::make_unique<WithoutReflection>());
  builder.AddListeningPort(options_.listen, creds, &port_);
  builder.SetMaxReceiveMessageSize(options_.max_message_bytes);
  builder.SetMaxSendMessageSize(options_.max_message_bytes);
  for (grpc::Service* s : services_) builder.RegisterService(s);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(MakeMetricsInterceptorFactory(&metrics_));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on '", options_.listen, "' (in use or invalid)"));
  }
  if (!options_.metrics_listen.empty()) {
    if (absl::Status s = metrics_.StartExposer(options_.metrics_listen); !s.ok()) return s;
  }
  metrics_.Gauge("r1r_up", "1 while the process serves.").Set(1);
  metrics_.Counter("r1r_rpc_handler_exceptions_total",
                   "C++ exceptions caught at the edge of an RPC handler (answered INTERNAL) or a worker thread.");
  if (options_.auth_token.empty() && !IsLoopback(options_.listen)) {
    spdlog::warn("{} listens on {} without auth: anyone who can reach this port may call every RPC "
                 "(set --auth-token-file or R1R_AUTH_TOKEN; docs/security.md)",
                 options_.service_name, options_.listen);
  }
  server_->GetHealthCheckService()->SetServingStatus(true);
  spdlog::info("{} listening port={} metrics_port={} auth={} tls={}", options_.service_name, port_,
               metrics_.port(), options_.auth_token.empty() ? "off" : "on",
               options_.tls_cert_file.empty() ? "off" : "on");
  // Machine-readable line for tests and the demo launcher (ephemeral ports).
  std::printf("R1R_READY service=%s port=%d metrics_port=%d\n", options_.service_name.c_str(), port_,
              metrics_.port());
  std::fflush(stdout);
  return absl::OkStatus();
}

void Server::Wait() {
  char b;
  while (read(g_signal_pipe[0], &b, 1) < 0 && errno == EINTR) {
  }
  spdlog::info("{} draining (deadline {}s)", options_.service_name, absl::ToDoubleSeconds(options_.drain_deadline));
  server_->GetHealthCheckService()->SetServingStatus(false);
  if (on_drain_) on_drain_();
  server_->Shutdown(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(options_.drain_deadline));
  server_->Wait();
  spdlog::info("{} stopped", options_.service_name);
}

void Server::Shutdown() { OnSignal(0); }

}  // namespace r1r::rpc
