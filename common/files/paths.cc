#include "common/files/paths.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace r1r::files {
namespace {

std::string ErrnoText() { return std::strerror(errno); }

std::string Join(const std::vector<std::string>& parts, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) absl::StrAppend(&out, "/", parts[i]);
  return out.empty() ? "/" : out;
}

// The checks shared by CheckRegularFile and ReadRegularFile, on a stat result.
absl::Status CheckStat(const struct stat& st, const std::string& path, uint64_t max_bytes) {
  if (S_ISDIR(st.st_mode)) return absl::InvalidArgumentError(absl::StrCat("'", path, "' is a directory, not a file"));
  if (!S_ISREG(st.st_mode)) {
    const char* kind = S_ISFIFO(st.st_mode)  ? "a FIFO"
                       : S_ISCHR(st.st_mode) ? "a character device"
                       : S_ISBLK(st.st_mode) ? "a block device"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "not a regular file";
    return absl::InvalidArgumentError(absl::StrCat("'", path, "' is ", kind, ", not a regular file"));
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", path, "' is ", st.st_size, " bytes, over the limit of ", max_bytes));
  }
  return absl::OkStatus();
}

absl::Status StatError(const std::string& path) {
  if (errno == ENOENT || errno == ENOTDIR) return absl::NotFoundError(absl::StrCat("no file '", path, "'"));
  return absl::InvalidArgumentError(absl::StrCat("cannot stat '", path, "': ", ErrnoText()));
}

}  // namespace

absl::StatusOr<std::string> ResolvePath(const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("empty path");
  if (path.find('\0') != std::string::npos) return absl::InvalidArgumentError("path holds a NUL byte");
  if (path.size() > PATH_MAX) return absl::InvalidArgumentError(absl::StrCat("path over ", PATH_MAX, " bytes"));
  std::string absolute = path;
  if (path.front() != '/') {
    char cwd[PATH_MAX];
    if (::getcwd(cwd, sizeof(cwd)) == nullptr) {
      return absl::InternalError(absl::StrCat("cannot read the working directory: ", ErrnoText()));
    }
    absolute = absl::StrCat(cwd, "/", path);
  }
  std::vector<std::string> parts;
  for (absl::string_view p : absl::StrSplit(absolute, '/', absl::SkipEmpty())) {
    if (p != ".") parts.emplace_back(p);
  }
  // The longest prefix that exists (lstat: a dangling link exists too, and is refused below).
  size_t existing = 0;
  while (existing < parts.size()) {
    struct stat st;
    if (::lstat(Join(parts, existing + 1).c_str(), &st) != 0) {
      if (errno == ENOENT) break;
      if (errno == ENOTDIR) {
        return absl::InvalidArgumentError(absl::StrCat("'", path, "': ", Join(parts, existing), " is not a directory"));
      }
      return absl::InvalidArgumentError(absl::StrCat("'", path, "': cannot stat ", Join(parts, existing + 1), ": ",
                                                     ErrnoText()));
    }
    ++existing;
  }
  const std::string prefix = Join(parts, existing);
  std::unique_ptr<char, decltype(&::free)> real(::realpath(prefix.c_str(), nullptr), &::free);
  if (!real) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", path, "': cannot resolve ", prefix, " (a dangling symbolic link?): ", ErrnoText()));
  }
  std::string out = real.get();
  for (size_t i = existing; i < parts.size(); ++i) {
    if (parts[i] == "..") {
      return absl::InvalidArgumentError(absl::StrCat("'", path, "': '..' after ", Join(parts, i),
                                                     ", which does not exist"));
    }
    if (out != "/") out += "/";
    out += parts[i];
  }
  return out;
}

bool IsUnder(absl::string_view path, absl::string_view root) {
  if (root == "/") return !path.empty() && path.front() == '/';
  if (path.size() < root.size() || path.substr(0, root.size()) != root) return false;
  return path.size() == root.size() || path[root.size()] == '/';
}

absl::StatusOr<Roots> Roots::Make(const std::vector<std::pair<std::string, std::string>>& flag_and_dir) {
  Roots roots;
  for (const auto& [flag, dir] : flag_and_dir) {
    if (dir.empty()) return absl::InvalidArgumentError(absl::StrCat("--", flag, " must not be empty"));
    auto resolved = ResolvePath(dir);
    if (!resolved.ok()) return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", resolved.status().message()));
    roots.roots_.emplace_back(flag, *resolved);
  }
  return roots;
}

std::string Roots::Describe() const {
  return absl::StrJoin(roots_, ", ", [](std::string* out, const auto& r) {
    absl::StrAppend(out, "--", r.first, "=", r.second);
  });
}

absl::StatusOr<std::string> Roots::Confine(const std::string& path, absl::string_view field) const {
  auto resolved = ResolvePath(path);
  if (!resolved.ok()) return absl::InvalidArgumentError(absl::StrCat(field, ": ", resolved.status().message()));
  for (const auto& [flag, root] : roots_) {
    if (IsUnder(*resolved, root)) return *resolved;
  }
  return absl::PermissionDeniedError(absl::StrCat(field, ": '", path, "' (", *resolved,
                                                  ") is outside the directories this service may use (",
                                                  roots_.empty() ? "none configured" : Describe(), ")"));
}

std::vector<std::pair<std::string, std::string>> RootFlag(const std::string& flag, const std::string& value,
                                                          const char* env_var, const std::string& fallback) {
  std::string dirs = value;
  if (dirs.empty() && env_var != nullptr) {
    if (const char* env = std::getenv(env_var); env != nullptr) dirs = env;
  }
  if (dirs.empty()) dirs = fallback;
  std::vector<std::pair<std::string, std::string>> out;
  for (absl::string_view dir : absl::StrSplit(dirs, ',', absl::SkipWhitespace())) out.emplace_back(flag, std::string(dir));
  if (out.empty()) out.emplace_back(flag, "");  // Roots::Make names the empty flag
  return out;
}

absl::Status CheckRegularFile(const std::string& path, uint64_t max_bytes) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return StatError(path);
  return CheckStat(st, path, max_bytes);
}

absl::StatusOr<std::string> ReadRegularFile(const std::string& path, uint64_t max_bytes) {
  // stat first: a device is refused without being opened (opening one can have effects).
  if (absl::Status s = CheckRegularFile(path, max_bytes); !s.ok()) return s;
  // O_NONBLOCK: should the path have become a FIFO meanwhile, open does not wait for a writer.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return StatError(path);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0) return StatError(path);
  if (absl::Status s = CheckStat(st, path, max_bytes); !s.ok()) return s;
  std::string out;
  out.resize(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (true) {
    if (done == out.size()) {
      // The file may have grown since fstat: read on, but never past the limit.
      if (out.size() >= max_bytes + 1) break;
      out.resize(std::min<uint64_t>(max_bytes + 1, std::max<size_t>(out.size() * 2, 4096)));
    }
    const ssize_t n = ::read(fd, out.data() + done, out.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::DataLossError(absl::StrCat("cannot read '", path, "': ", ErrnoText()));
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  if (done > max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("'", path, "' grew over the limit of ", max_bytes, " bytes"));
  }
  out.resize(done);
  return out;
}

absl::Status CheckReplaceable(const std::string& dir, absl::string_view field) {
  struct stat st;
  if (::lstat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return absl::FailedPreconditionError(absl::StrCat(field, ": cannot stat '", dir, "': ", ErrnoText()));
  }
  if (S_ISLNK(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(field, ": '", dir, "' is a symbolic link; r1r replaces only directories it created"));
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(field, ": '", dir, "' exists and is not a directory"));
  }
  std::unique_ptr<DIR, decltype(&::closedir)> d(::opendir(dir.c_str()), &::closedir);
  if (!d) return absl::FailedPreconditionError(absl::StrCat(field, ": cannot list '", dir, "': ", ErrnoText()));
  bool empty = true;
  while (const dirent* e = ::readdir(d.get())) {
    const absl::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    empty = false;
    break;
  }
  if (empty) return absl::OkStatus();
  struct stat marker;
  const std::string marker_path = absl::StrCat(dir, "/", kOwnedMarker);
  if (::lstat(marker_path.c_str(), &marker) == 0 && S_ISREG(marker.st_mode)) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      field, ": '", dir, "' is a non-empty directory that r1r did not create (no ", kOwnedMarker,
      " in it); r1r replaces only its own directories: name a new or empty directory"));
}

absl::Status MarkOwned(const std::string& dir, absl::string_view owner) {
  const std::string path = absl::StrCat(dir, "/", kOwnedMarker);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot write ", path, ": ", ErrnoText()));
  const std::string text = absl::StrCat("created by ", owner, "; r1r may replace or delete this directory\n");
  const ssize_t n = ::write(fd, text.data(), text.size());
  const int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(text.size())) {
    return absl::InternalError(absl::StrCat("cannot write ", path, ": ", std::strerror(err)));
  }
  return absl::OkStatus();
}

}  // namespace r1r::files
