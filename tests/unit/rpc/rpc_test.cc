#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/impl/client_unary_call.h>
#include <grpcpp/support/byte_buffer.h>
#include <prometheus/text_serializer.h>

#include "common/files/remove_tree.h"
#include "common/obs/http_exposer.h"
#include "common/rpc/auth.h"
#include "common/rpc/client.h"
#include "common/rpc/handler_guard.h"
#include "common/rpc/server.h"
#include "common/rpc/status.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "r1r/v1/jobs.grpc.pb.h"

namespace r1r::rpc {
namespace {

using ::testing::HasSubstr;

// A JobService whose ListJobs sleeps for `delay` and returns one job named "pong".
class FakeJobs final : public v1::JobService::Service {
 public:
  explicit FakeJobs(std::chrono::milliseconds delay = std::chrono::milliseconds(0)) : delay_(delay) {}
  grpc::Status ListJobs(grpc::ServerContext* ctx, const v1::ListJobsRequest*, v1::ListJobsResponse* resp) override {
    if (grpc::Status s = Authorize(ctx); !s.ok()) return s;
    std::this_thread::sleep_for(delay_);
    resp->add_jobs()->set_name("pong");
    return grpc::Status::OK;
  }

 private:
  std::chrono::milliseconds delay_;
};

std::unique_ptr<Server> StartServer(grpc::Service* service, const std::string& token = "", int port = 0) {
  ServerOptions o;
  o.service_name = "test";
  o.listen = "127.0.0.1:" + std::to_string(port);
  o.auth_token = token;
  auto server = std::make_unique<Server>(o);
  server->AddService(service);
  absl::Status s = server->Start();
  EXPECT_TRUE(s.ok()) << s;
  return server;
}

ClientOptions Client(int port, const std::string& token = "", absl::Duration timeout = absl::Seconds(5)) {
  ClientOptions c;
  c.target = "127.0.0.1:" + std::to_string(port);
  c.auth_token = token;
  c.timeout = timeout;
  return c;
}

grpc::Status CallList(const ClientOptions& c, v1::ListJobsResponse* resp = nullptr) {
  auto channel = MakeChannel(c);
  auto stub = v1::JobService::NewStub(*channel);
  v1::ListJobsResponse local;
  grpc::ClientContext ctx;
  PrepareContext(ctx, c);
  return stub->ListJobs(&ctx, v1::ListJobsRequest(), resp ? resp : &local);
}

TEST(rpc, AuthRejectsMissingAndWrongTokens) {
  FakeJobs jobs;
  auto server = StartServer(&jobs, "s3cret");
  EXPECT_EQ(CallList(Client(server->port())).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  grpc::Status wrong = CallList(Client(server->port(), "nope"));
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(wrong.error_message(), HasSubstr("invalid bearer token"));
  v1::ListJobsResponse resp;
  ASSERT_TRUE(CallList(Client(server->port(), "s3cret"), &resp).ok());
  EXPECT_EQ(resp.jobs(0).name(), "pong");
}

TEST(rpc, HealthIsReachableWithoutToken) {
  FakeJobs jobs;
  auto server = StartServer(&jobs, "s3cret");
  auto channel = MakeChannel(Client(server->port()));
  auto stub = grpc::health::v1::Health::NewStub(*channel);
  grpc::ClientContext ctx;
  grpc::health::v1::HealthCheckResponse resp;
  ASSERT_TRUE(stub->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &resp).ok());
  EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

// Calls the reflection service with an empty request (a unary call on its streaming method).
grpc::StatusCode CallReflection(int port) {
  auto channel = MakeChannel(Client(port));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  // ServerReflectionRequest{list_services: ""}: field 7, length 0.
  const std::string list_services("\x3a\x00", 2);
  grpc::Slice slice(list_services);
  grpc::ByteBuffer request(&slice, 1), response;
  const grpc::internal::RpcMethod method("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                                         grpc::internal::RpcMethod::NORMAL_RPC);
  return grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>((*channel).get(), method, &ctx,
                                                                               request, &response)
      .error_code();
}

TEST(rpc, ReflectionFollowsAuth) {
  FakeJobs open_jobs, closed_jobs;
  auto open = StartServer(&open_jobs);
  EXPECT_EQ(CallReflection(open->port()), grpc::StatusCode::OK);  // served when auth is off
  auto closed = StartServer(&closed_jobs, "s3cret");
  EXPECT_EQ(CallReflection(closed->port()), grpc::StatusCode::UNIMPLEMENTED);  // not served to callers without a token
}

int ConnectTo(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  return fd;
}

TEST(rpc, MetricsAnswerWhileSlowAndIdleClientsHoldConnections) {
  auto exposer = obs::HttpExposer::Start("127.0.0.1:0");
  ASSERT_TRUE(exposer.ok()) << exposer.status();
  // Idle connections (more than the cap) and a slowloris that sends one byte every 300 ms.
  std::vector<int> idle;
  for (int i = 0; i < 40; ++i) idle.push_back(ConnectTo((*exposer)->port()));
  const int slow = ConnectTo((*exposer)->port());
  std::atomic<bool> stop{false};
  std::thread dribble([&] {
    while (!stop) {
      (void)::send(slow, "G", 1, MSG_NOSIGNAL);
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto start = std::chrono::steady_clock::now();
  const int scrape = ConnectTo((*exposer)->port());
  timeval timeout{4, 0};
  ::setsockopt(scrape, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  const std::string get = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(::send(scrape, get.data(), get.size(), MSG_NOSIGNAL), static_cast<ssize_t>(get.size()));
  std::string response;
  char buf[4096];
  for (ssize_t n; (n = ::recv(scrape, buf, sizeof(buf), 0)) > 0;) response.append(buf, static_cast<size_t>(n));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  stop = true;
  dribble.join();
  for (int fd : idle) ::close(fd);
  ::close(slow);
  ::close(scrape);
  EXPECT_THAT(response, HasSubstr("200 OK"));
  EXPECT_LT(seconds, 2.0);
}

// A JobService whose GetJob throws, as a handler with a bug would; ListJobs throws behind GuardHandler.
class ThrowingJobs final : public v1::JobService::Service {
 public:
  grpc::Status GetJob(grpc::ServerContext*, const v1::GetJobRequest* req, v1::Job*) override {
    throw std::out_of_range("vector::at: " + req->id());
  }
  grpc::Status ListJobs(grpc::ServerContext* ctx, const v1::ListJobsRequest*, v1::ListJobsResponse*) override {
    return GuardHandler(ctx, "JobService/ListJobs", [&]() -> grpc::Status {
      throw std::runtime_error("shape mismatch: [3, 4] vs [4, 3]");
    });
  }
};

TEST(rpc, GuardedHandlerExceptionKeepsItsMessageAndIsCounted) {
  ThrowingJobs jobs;
  auto server = StartServer(&jobs);
  for (int i = 0; i < 3; ++i) {
    v1::ListJobsResponse resp;
    const grpc::Status s = CallList(Client(server->port()), &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INTERNAL);
    EXPECT_THAT(s.error_message(), HasSubstr("JobService/ListJobs: unexpected C++ exception: shape mismatch"));
  }
  EXPECT_EQ(server->metrics().Counter("r1r_rpc_handler_exceptions_total", "").Value(), 3);
}

TEST(rpc, HandlerExceptionIsInternalNamingTheMethodAndCounted) {
  ThrowingJobs jobs;
  auto server = StartServer(&jobs);
  auto channel = MakeChannel(Client(server->port()));
  auto stub = v1::JobService::NewStub(*channel);
  for (int i = 0; i < 2; ++i) {
    grpc::ClientContext ctx;
    v1::GetJobRequest req;
    req.set_id("x");
    v1::Job job;
    const grpc::Status s = stub->GetJob(&ctx, req, &job);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INTERNAL);
    EXPECT_THAT(s.error_message(), HasSubstr("JobService/GetJob"));
  }
  EXPECT_EQ(server->metrics().Counter("r1r_rpc_handler_exceptions_total", "").Value(), 2);
  grpc::ClientContext ctx;  // still serving
  rpc::PrepareContext(ctx, Client(server->port()));
  v1::Job cancelled;
  EXPECT_EQ(stub->CancelJob(&ctx, v1::CancelJobRequest(), &cancelled).error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

TEST(rpc, DeadlineIsHonoured) {
  FakeJobs slow(std::chrono::milliseconds(3000));
  auto server = StartServer(&slow);
  const auto start = std::chrono::steady_clock::now();
  grpc::Status s = CallList(Client(server->port(), "", absl::Milliseconds(200)));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_LT(seconds, 2.0);
}

TEST(rpc, ClientRetriesThroughServerRestart) {
  FakeJobs jobs;
  auto first = StartServer(&jobs);
  const int port = first->port();
  ASSERT_TRUE(CallList(Client(port)).ok());
  first.reset();  // server gone: calls now fail with UNAVAILABLE
  EXPECT_EQ(CallList(Client(port, "", absl::Milliseconds(300))).error_code(), grpc::StatusCode::UNAVAILABLE);

  std::unique_ptr<Server> second;
  std::thread restarter([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    second = StartServer(&jobs, "", port);
  });
  ClientOptions c = Client(port, "", absl::Milliseconds(500));
  auto channel = MakeChannel(c);
  auto stub = v1::JobService::NewStub(*channel);
  int attempts = 0;
  v1::ListJobsResponse resp;
  grpc::Status s = CallWithRetry(c, RetryPolicy{.max_attempts = 10, .initial_backoff = absl::Milliseconds(100)},
                                 [&](grpc::ClientContext& ctx) {
                                   ++attempts;
                                   return stub->ListJobs(&ctx, v1::ListJobsRequest(), &resp);
                                 });
  restarter.join();
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_GT(attempts, 1);
}

TEST(rpc, RetryGivesUpOnNonRetryableCodes) {
  int attempts = 0;
  grpc::Status s = CallWithRetry(Client(1), RetryPolicy{}, [&](grpc::ClientContext&) {
    ++attempts;
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad");
  });
  EXPECT_EQ(attempts, 1);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(rpc, RetryStopsWhenToldToGiveUp) {
  std::atomic<bool> stopping{false};
  int attempts = 0;
  RetryPolicy policy{.max_attempts = 30, .initial_backoff = absl::Milliseconds(1), .max_backoff = absl::Milliseconds(1)};
  policy.give_up = [&] { return stopping.load(); };
  grpc::Status s = CallWithRetry(Client(1), policy, [&](grpc::ClientContext&) {
    if (++attempts == 3) stopping = true;  // the process starts to shut down during the third attempt
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "peer restarting");
  });
  EXPECT_EQ(attempts, 3);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST(rpc, PerRpcMetricsCountMethodAndCode) {
  FakeJobs jobs;
  auto server = StartServer(&jobs, "tok");
  ASSERT_TRUE(CallList(Client(server->port(), "tok")).ok());
  ASSERT_TRUE(CallList(Client(server->port(), "tok")).ok());
  const std::string text = prometheus::TextSerializer().Serialize(server->metrics().registry().Collect());
  EXPECT_THAT(text, HasSubstr("r1r_rpc_requests_total{code=\"OK\",method=\"/r1r.v1.JobService/ListJobs\",service=\"test\"} 2"));
  EXPECT_THAT(text, HasSubstr("r1r_rpc_request_seconds_count{method=\"/r1r.v1.JobService/ListJobs\",service=\"test\"} 2"));
}

TEST(rpc, StatusCodesMapBothWays) {
  const absl::Status a = absl::InvalidArgumentError("rl.eps_clip: bad");
  const grpc::Status g = ToGrpc(a);
  EXPECT_EQ(g.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(g.error_message(), "rl.eps_clip: bad");
  EXPECT_EQ(FromGrpc(g), a);
  EXPECT_TRUE(ToGrpc(absl::OkStatus()).ok());
  EXPECT_EQ(FromGrpc(grpc::Status(grpc::StatusCode::UNAVAILABLE, "x")).code(), absl::StatusCode::kUnavailable);
}

// A self-signed certificate for 127.0.0.1 made with the openssl CLI (the bootstrap installs it):
// dir/<name>.crt and dir/<name>.key. The certificate is its own CA.
std::string MakeSelfSignedCert(const std::string& dir, const std::string& name) {
  const std::string base = dir + "/" + name;
  const std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost -addext "
                          "subjectAltName=IP:127.0.0.1,DNS:localhost -keyout " +
                          base + ".key -out " + base + ".crt >/dev/null 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  return base;
}

TEST(rpc, TlsServesClientsThatTrustItsCertificateAndNoOthers) {
  const std::string dir = ::testing::TempDir() + "/rpc_tls_" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  const std::string server_cert = MakeSelfSignedCert(dir, "server");
  const std::string stranger = MakeSelfSignedCert(dir, "stranger");
  FakeJobs jobs;
  ServerOptions o;
  o.service_name = "test";
  o.listen = "127.0.0.1:0";
  o.auth_token = "s3cret";
  o.tls_cert_file = server_cert + ".crt";
  o.tls_key_file = server_cert + ".key";
  Server server(o);
  server.AddService(&jobs);
  ASSERT_TRUE(server.Start().ok());

  ClientOptions trusted = Client(server.port(), "s3cret", absl::Seconds(3));
  trusted.tls_ca_file = server_cert + ".crt";
  v1::ListJobsResponse resp;
  grpc::Status ok = CallList(trusted, &resp);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_EQ(resp.jobs(0).name(), "pong");
  // TLS does not replace the token check.
  ClientOptions no_token = trusted;
  no_token.auth_token.clear();
  EXPECT_EQ(CallList(no_token).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // Plaintext, or a CA that did not sign the server's certificate: no connection.
  EXPECT_EQ(CallList(Client(server.port(), "s3cret", absl::Seconds(3))).error_code(), grpc::StatusCode::UNAVAILABLE);
  ClientOptions wrong_ca = trusted;
  wrong_ca.tls_ca_file = stranger + ".crt";
  EXPECT_EQ(CallList(wrong_ca).error_code(), grpc::StatusCode::UNAVAILABLE);
  ClientOptions missing_ca = trusted;
  missing_ca.tls_ca_file = dir + "/none.crt";
  EXPECT_EQ(MakeChannel(missing_ca).status().code(), absl::StatusCode::kNotFound);
  server.Shutdown();
  r1r::files::RemoveTree(dir).IgnoreError();
}

TEST(rpc, TlsMisconfigurationIsAnErrorAtStart) {
  config::Flags flags;
  AddServerFlags(flags, "127.0.0.1:0", "");
  const char* half[] = {"svc", "--tls-cert", "/tmp/x.crt"};
  ASSERT_TRUE(flags.Parse(3, half).ok());
  EXPECT_EQ(ServerOptionsFromFlags(flags, "test").status().code(), absl::StatusCode::kInvalidArgument);
  ServerOptions o;
  o.service_name = "test";
  o.listen = "127.0.0.1:0";
  o.tls_cert_file = ::testing::TempDir() + "/no_such.crt";
  o.tls_key_file = ::testing::TempDir() + "/no_such.key";
  Server server(o);
  EXPECT_FALSE(server.Start().ok());
}

}  // namespace
}  // namespace r1r::rpc
