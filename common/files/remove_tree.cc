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

int RemoveOne(const char* path, const struct stat*, int type, struct FTW*) {
  if (type == FTW_DNR || type == FTW_NS) {  // unreadable directory, or no stat
    failed_errno = errno != 0 ? errno : EACCES;
    failed_path = path;
    return 1;
  }
  if (std::remove(path) != 0 && errno != ENOENT) {  // remove(3): unlink for files and links, rmdir for dirs
    failed_errno = errno;
    failed_path = path;
    return 1;
  }
  return 0;
}

}  // namespace

absl::Status RemoveTree(const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("RemoveTree: empty path");
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return absl::InternalError(absl::StrCat("cannot stat ", path, ": ", std::strerror(errno)));
  }
  failed_errno = 0;
  failed_path.clear();
  // FTW_DEPTH: children before their directory; FTW_PHYS: do not follow symbolic links.
  const int rc = ::nftw(path.c_str(), RemoveOne, /*nopenfd=*/16, FTW_DEPTH | FTW_PHYS);
  if (rc == 0) return absl::OkStatus();
  if (failed_errno == 0) failed_errno = errno;
  return absl::InternalError(absl::StrCat("cannot remove ", failed_path.empty() ? path : failed_path, ": ",
                                          std::strerror(failed_errno)));
}

}  // namespace r1r::files
