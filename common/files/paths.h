// Paths named by requests and job specs, confined to directories the operator configured, and
// files read only when they are regular files of a bounded size. Torch-free.
//
// A service resolves every path a caller names with Roots::Confine before it opens, creates or
// replaces anything there: the path is made absolute (against the working directory), the symbolic
// links of its existing part are resolved (realpath), a ".." in the part that does not exist yet is
// refused, and the result must lie under one of the roots (also resolved). So neither "../.." nor a
// symbolic link inside a root that points out of it reaches another directory.
//
// Reading goes through ReadRegularFile / CheckRegularFile: the file is opened without blocking
// (a FIFO does not wait for a writer), must be a regular file (not a FIFO, a device such as
// /dev/zero, a socket or a directory), and its size is checked before a byte is read.
#pragma once

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace r1r::files {

// `path` made absolute with the symbolic links of its longest existing prefix resolved and the rest
// appended ("." dropped). InvalidArgument for an empty path, a NUL byte, a ".." after the existing
// prefix, or a dangling symbolic link on the way (it could later be made to point anywhere).
absl::StatusOr<std::string> ResolvePath(const std::string& path);

// True when the resolved `path` is `root` or lies below it (component-wise: /a/bc is not under /a/b).
bool IsUnder(absl::string_view path, absl::string_view root);

// Directories that request paths may name, each with the flag that configured it (for messages).
class Roots {
 public:
  Roots() = default;
  // Resolves each root now (it need not exist yet). InvalidArgument names the flag of a bad root.
  static absl::StatusOr<Roots> Make(const std::vector<std::pair<std::string, std::string>>& flag_and_dir);

  // The resolved path when it lies under one of the roots; otherwise PermissionDenied naming `field`,
  // the path and the roots. InvalidArgument when the path cannot be resolved (see ResolvePath).
  absl::StatusOr<std::string> Confine(const std::string& path, absl::string_view field) const;

  const std::vector<std::pair<std::string, std::string>>& roots() const { return roots_; }
  // "--data-root=/a, --work-root=/b": for error messages.
  std::string Describe() const;

 private:
  std::vector<std::pair<std::string, std::string>> roots_;  // (flag, resolved dir)
};

// The directories a root flag names: its value, else $env_var, else `fallback`; several may be given
// separated by commas ("/var/lib/r1r,/models,/data"). Returns (flag, dir) pairs for Roots::Make.
std::vector<std::pair<std::string, std::string>> RootFlag(const std::string& flag, const std::string& value,
                                                          const char* env_var, const std::string& fallback);

// OK when `path` is a regular file (symbolic links followed) of at most `max_bytes`; opening it does
// not block. NotFound for a missing file, InvalidArgument for anything else (a FIFO, a device, a
// directory, too large), each naming the path.
absl::Status CheckRegularFile(const std::string& path, uint64_t max_bytes);

// The content of a regular file of at most `max_bytes` (checked as CheckRegularFile does, on the
// opened descriptor, before reading).
absl::StatusOr<std::string> ReadRegularFile(const std::string& path, uint64_t max_bytes);

// Directories a service creates and may later replace or delete carry this marker file. A directory
// a caller names is replaced only when it does not exist, is empty, or holds the marker.
inline constexpr char kOwnedMarker[] = ".r1r-owned";

// OK when `dir` may be (re)created by a service: it does not exist, or it is a real directory (not a
// symbolic link) that is empty or holds kOwnedMarker. FailedPrecondition otherwise, naming `field`.
absl::Status CheckReplaceable(const std::string& dir, absl::string_view field);

// Writes kOwnedMarker into `dir` (which must exist), naming `owner` (e.g. "r1r-learner export").
absl::Status MarkOwned(const std::string& dir, absl::string_view owner);

}  // namespace r1r::files
