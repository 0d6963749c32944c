#include "common/files/remove_tree.h"

#include <ftw.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace r1r::files {
namespace {

// nftw takes a plain function: the first failure goes through thread-local state.
thread_local int failed_errno = 0;
thread_local std::string failed_path;

// What std::filesystem::remove_all counts as "nothing there": no such entry, or a file where a
// directory was named on the way.
bool IsAbsent(int err) { return err == ENOENT || err == ENOTDIR; }

int RemoveOne(const char* path, const struct stat*, int type, struct FTW*) {
  if (type == FTW_NS && IsAbsent(errno)) return 0;  // removed by someone else meanwhile
  if (type == FTW_DNR || type == FTW_NS) {          // unreadable directory, or no stat
    failed_errno = errno != 0 ? errno : EACCES;
    failed_path = path;
    return 1;
  }
  if (std::remove(path) != 0 && !IsAbsent(errno)) {  // remove(3): unlink for files and links, rmdir for dirs
    failed_errno = errno;
    failed_path = path;
    return 1;
  }
  return 0;
}

}  // namespace

absl::Status RemoveTree(const std::string& path_in) {
  if (path_in.empty()) return absl::InvalidArgumentError("RemoveTree: empty path");
  // "link/" would resolve to the link's target, whose contents would then go: name the link itself.
  std::string path = path_in;
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (IsAbsent(errno)) return absl::OkStatus();
    return absl::InternalError(absl::StrCat("cannot stat ", path, ": ", std::strerror(errno)));
  }
  failed_errno = 0;
  failed_path.clear();
  // FTW_DEPTH: children before their directory; FTW_PHYS: do not follow symbolic links.
  const int rc = ::nftw(path.c_str(), RemoveOne, /*nopenfd=*/16, FTW_DEPTH | FTW_PHYS);
  if (rc == 0) return absl::OkStatus();
  if (rc == -1 && IsAbsent(errno)) return absl::OkStatus();  // the whole tree went meanwhile
  if (failed_errno == 0) failed_errno = errno;
  return absl::InternalError(absl::StrCat("cannot remove ", failed_path.empty() ? path : failed_path, ": ",
                                          std::strerror(failed_errno)));
}

}  // namespace r1r::files
