#include "common/rpc/auth.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <absl/strings/ascii.h>
#include <absl/strings/match.h>
#include <absl/strings/str_cat.h>
#include <absl/synchronization/mutex.h>

namespace r1r::rpc {

absl::StatusOr<std::string> LoadToken(const std::string& token_file) {
  if (!token_file.empty()) {
    std::ifstream in(token_file);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read auth token file '", token_file, "'"));
    std::stringstream ss;
    ss << in.rdbuf();
    std::string token(absl::StripAsciiWhitespace(ss.str()));
    if (token.empty()) return absl::InvalidArgumentError(absl::StrCat("auth token file '", token_file, "' is empty"));
    return token;
  }
  const char* env = std::getenv(kTokenEnvVar);
  return env ? std::string(absl::StripAsciiWhitespace(env)) : std::string();
}

namespace {

// Compares without an early exit so the time taken does not reveal the matching prefix.
bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i % (b.empty() ? 1 : b.size())]);
  return diff == 0 && !b.empty();
}

absl::Mutex g_token_mu;
std::string* g_token ABSL_GUARDED_BY(g_token_mu) = new std::string();

}  // namespace

void SetServerToken(std::string token) {
  absl::MutexLock lock(&g_token_mu);
  *g_token = token.empty() ? "" : absl::StrCat("Bearer ", token);
}

grpc::Status Authorize(const grpc::ServerContext* ctx) {
  std::string expected;
  {
    absl::MutexLock lock(&g_token_mu);
    expected = *g_token;
  }
  if (expected.empty()) return grpc::Status::OK;
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "missing 'authorization: Bearer <token>' metadata");
  }
  if (!ConstantTimeEquals(std::string(it->second.data(), it->second.size()), expected)) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "invalid bearer token");
  }
  return grpc::Status::OK;
}

}  // namespace r1r::rpc
