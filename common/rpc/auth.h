// Optional bearer-token auth. The token comes from a file (--auth-token-file) or the environment
// (R1R_AUTH_TOKEN); an empty token disables auth. The health service stays open without a token so
// that orchestrators and Kubernetes probes can check liveness.
#pragma once

#include <memory>
#include <string>

#include <absl/status/statusor.h>
#include <grpcpp/server_context.h>

namespace r1r::rpc {

inline constexpr char kTokenEnvVar[] = "R1R_AUTH_TOKEN";

// Reads the token: the file wins over the environment. Trailing whitespace is stripped.
// Returns "" when neither is set; an unreadable or empty file is an error.
absl::StatusOr<std::string> LoadToken(const std::string& token_file);

// The token this process's server expects; set by Server::Start ("" = auth off).
void SetServerToken(std::string token);

// Every r1r RPC handler starts with `if (auto s = Authorize(ctx); !s.ok()) return s;`: calls
// without "authorization: Bearer <token>" get UNAUTHENTICATED. (gRPC's AuthMetadataProcessor
// cannot be attached to insecure credentials, and interceptors cannot reject a call; the
// built-in health service never calls this, so it stays open.)
grpc::Status Authorize(const grpc::ServerContext* ctx);

}  // namespace r1r::rpc
