// What every CLI verb shares: the target, the token, --json, and exit codes a script can rely on.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <absl/status/status.h>
#include <grpcpp/channel.h>

#include "common/config/flags.h"
#include "common/rpc/client.h"

namespace r1r::cli {

// Exit codes (documented in README.md).
enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,        // the operation failed (e.g. a watched job FAILED)
  kExitUsage = 2,          // bad command line
  kExitUnavailable = 3,    // server unreachable or deadline exceeded
  kExitNotFound = 4,
  kExitInvalid = 5,        // the server rejected the request (INVALID_ARGUMENT / FAILED_PRECONDITION)
  kExitUnauthenticated = 6,
  kExitCancelled = 7,      // a watched job was CANCELLED
};

int ExitCodeFor(const absl::Status& s);

// Adds --target, --token-file, --timeout, --tls-ca and --json.
void AddClientFlags(config::Flags& flags, const std::string& default_target);

struct CliContext {
  rpc::ClientOptions options;
  bool json = false;
  std::shared_ptr<grpc::Channel> channel;
};

absl::StatusOr<CliContext> MakeContext(const config::Flags& flags);

// Prints "error: <message>" to stderr and returns the exit code for `s`.
int Fail(const absl::Status& s);

// Parses a verb's flags (argv[2..]). Returns the exit code when the verb should stop here: kExitUsage
// after a bad command line (message, usage and flags on stderr), kExitOk after --help; else nullopt.
std::optional<int> ParseVerbFlags(config::Flags& flags, int argc, char** argv, const std::string& usage);

}  // namespace r1r::cli
