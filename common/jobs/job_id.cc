#include "common/jobs/job_id.h"

#include <absl/random/random.h>
#include <absl/strings/str_format.h>
#include <absl/synchronization/mutex.h>

namespace r1r::jobs {

std::string NewJobId(absl::Time now) {
  static absl::BitGen gen;
  static absl::Mutex mu;
  uint32_t suffix;
  {
    absl::MutexLock lock(&mu);
    suffix = absl::Uniform<uint32_t>(gen, 0, 1u << 24);
  }
  return absl::StrFormat("job-%s-%06x", absl::FormatTime("%Y%m%d-%H%M%S", now, absl::UTCTimeZone()), suffix);
}

bool IsValidJobId(const std::string& id) {
  if (id.size() != 26 || id.rfind("job-", 0) != 0) return false;
  for (size_t i = 4; i < id.size(); ++i) {
    const char c = id[i];
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace r1r::jobs
