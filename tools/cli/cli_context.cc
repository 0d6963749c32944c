#include "tools/cli/cli_context.h"

#include <cstdio>

#include "common/rpc/auth.h"

namespace r1r::cli {

int ExitCodeFor(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kOk: return kExitOk;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded: return kExitUnavailable;
    case absl::StatusCode::kNotFound: return kExitNotFound;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange: return kExitInvalid;
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied: return kExitUnauthenticated;
    case absl::StatusCode::kCancelled: return kExitCancelled;
    default: return kExitFailure;
  }
}

void AddClientFlags(config::Flags& flags, const std::string& default_target) {
  flags.Value("target", default_target, "server address host:port")
      .Value("token-file", "", "bearer token file (else $R1R_AUTH_TOKEN)")
      .Value("tls-ca", "", "CA certificate (PEM) to verify a TLS server")
      .Value("timeout", "30", "seconds per call")
      .Switch("json", "machine-readable JSON output");
}

absl::StatusOr<CliContext> MakeContext(const config::Flags& flags) {
  CliContext ctx;
  ctx.options.target = flags.Get("target");
  auto token = rpc::LoadToken(flags.Get("token-file"));
  if (!token.ok()) return token.status();
  ctx.options.auth_token = *token;
  ctx.options.tls_ca_file = flags.Get("tls-ca");
  auto timeout = flags.GetDouble("timeout");
  if (!timeout.ok()) return timeout.status();
  if (*timeout <= 0) return absl::InvalidArgumentError("--timeout must be > 0");
  ctx.options.timeout = absl::Seconds(*timeout);
  ctx.json = flags.Has("json");
  auto channel = rpc::MakeChannel(ctx.options);
  if (!channel.ok()) return channel.status();
  ctx.channel = *channel;
  return ctx;
}

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "error: %s\n", std::string(s.message()).c_str());
  return ExitCodeFor(s);
}

std::optional<int> ParseVerbFlags(config::Flags& flags, int argc, char** argv, const std::string& usage) {
  if (absl::Status s = flags.Parse(argc, argv, 2); !s.ok()) {
    std::fprintf(stderr, "%s\nusage: %s\n%s", std::string(s.message()).c_str(), usage.c_str(), flags.Help().c_str());
    return kExitUsage;
  }
  if (flags.Has("help")) {
    std::printf("usage: %s\n%s", usage.c_str(), flags.Help().c_str());
    return kExitOk;
  }
  return std::nullopt;
}

}  // namespace r1r::cli
