// Client channels: bearer token, optional TLS, a deadline on every call, and retries with
// exponential backoff on UNAVAILABLE (a server restarting or not up yet).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <absl/status/statusor.h>
#include <absl/time/time.h>
#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

namespace r1r::rpc {

struct ClientOptions {
  std::string target;                      // host:port
  std::string auth_token;                  // sent as "authorization: Bearer <token>"
  std::string tls_ca_file;                 // set: TLS, verifying the server against this CA
  absl::Duration timeout = absl::Seconds(30);
  int max_message_bytes = 64 << 20;
};

struct RetryPolicy {
  int max_attempts = 6;
  absl::Duration initial_backoff = absl::Milliseconds(200);
  absl::Duration max_backoff = absl::Seconds(5);
  double multiplier = 2.0;
  // Asked after each UNAVAILABLE attempt and after each backoff: true ends the retries (a process that
  // is shutting down should not wait minutes for a peer).
  std::function<bool()> give_up;
};

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const ClientOptions& options);

// Sets the deadline and the auth header of `ctx` from `options`.
void PrepareContext(grpc::ClientContext& ctx, const ClientOptions& options);

// Calls `attempt` with a fresh, prepared context until it returns anything but UNAVAILABLE, the
// attempts run out or `policy.give_up` says so; sleeps with exponential backoff in between.
grpc::Status CallWithRetry(const ClientOptions& options, const RetryPolicy& policy,
                           const std::function<grpc::Status(grpc::ClientContext&)>& attempt);

}  // namespace r1r::rpc
