#include "common/rpc/auth.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <absl/strings/ascii.h>
#include <absl/strings/match.h>
#include <absl/strings/str_cat.h>

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

class BearerTokenProcessor : public grpc::AuthMetadataProcessor {
 public:
  explicit BearerTokenProcessor(std::string token) : expected_(absl::StrCat("Bearer ", token)) {}

  bool IsBlocking() const override { return false; }

  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext*, OutputMetadata*,
                       OutputMetadata*) override {
    auto path = auth_metadata.find(":path");
    if (path != auth_metadata.end() &&
        absl::StartsWith(absl::string_view(path->second.data(), path->second.size()), "/grpc.health.v1.Health/")) {
      return grpc::Status::OK;
    }
    auto auth = auth_metadata.find("authorization");
    if (auth == auth_metadata.end()) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "missing 'authorization: Bearer <token>' metadata");
    }
    if (!ConstantTimeEquals(std::string(auth->second.data(), auth->second.size()), expected_)) return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "invalid bearer token");
    return grpc::Status::OK;
  }

 private:
  std::string expected_;
};

}  // namespace

std::shared_ptr<grpc::AuthMetadataProcessor> MakeBearerTokenProcessor(std::string token) {
  return std::make_shared<BearerTokenProcessor>(std::move(token));
}

}  // namespace r1r::rpc
