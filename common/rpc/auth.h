// Optional bearer-token auth. The token comes from a file (--auth-token-file) or the environment
// (R1R_AUTH_TOKEN); an empty token disables auth. The health service stays open without a token so
// that orchestrators and Kubernetes probes can check liveness.
#pragma once

#include <memory>
#include <string>

#include <absl/status/statusor.h>
#include <grpcpp/security/auth_metadata_processor.h>

namespace r1r::rpc {

inline constexpr char kTokenEnvVar[] = "R1R_AUTH_TOKEN";

// Reads the token: the file wins over the environment. Trailing whitespace is stripped.
// Returns "" when neither is set; an unreadable or empty file is an error.
absl::StatusOr<std::string> LoadToken(const std::string& token_file);

// Rejects calls without "authorization: Bearer <token>" with UNAUTHENTICATED, except health checks.
std::shared_ptr<grpc::AuthMetadataProcessor> MakeBearerTokenProcessor(std::string token);

}  // namespace r1r::rpc
