#include "common/rpc/client.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

#include <absl/strings/str_cat.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

namespace r1r::rpc {

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const ClientOptions& options) {
  if (options.target.empty()) return absl::InvalidArgumentError("empty target: expected host:port");
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (!options.tls_ca_file.empty()) {
    std::ifstream in(options.tls_ca_file);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read CA file '", options.tls_ca_file, "'"));
    std::stringstream ss;
    ss << in.rdbuf();
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ss.str();
    creds = grpc::SslCredentials(ssl);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  args.SetMaxSendMessageSize(options.max_message_bytes);
  // Reconnect quickly after a server restart instead of gRPC's default backoff of up to 120 s.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  return grpc::CreateCustomChannel(options.target, creds, args);
}

void PrepareContext(grpc::ClientContext& ctx, const ClientOptions& options) {
  ctx.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(options.timeout));
  if (!options.auth_token.empty()) ctx.AddMetadata("authorization", absl::StrCat("Bearer ", options.auth_token));
}

grpc::Status CallWithRetry(const ClientOptions& options, const RetryPolicy& policy,
                           const std::function<grpc::Status(grpc::ClientContext&)>& attempt) {
  absl::Duration backoff = policy.initial_backoff;
  grpc::Status status;
  for (int i = 0; i < std::max(1, policy.max_attempts); ++i) {
    grpc::ClientContext ctx;
    PrepareContext(ctx, options);
    status = attempt(ctx);
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE) return status;
    if (policy.give_up && policy.give_up()) return status;
    if (i + 1 < policy.max_attempts) {
      std::this_thread::sleep_for(absl::ToChronoMilliseconds(backoff));
      backoff = std::min(policy.max_backoff, backoff * policy.multiplier);
      if (policy.give_up && policy.give_up()) return status;
    }
  }
  return status;
}

}  // namespace r1r::rpc
