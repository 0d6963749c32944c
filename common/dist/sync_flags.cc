#include "common/dist/sync_flags.h"

#include <chrono>

#include <absl/strings/str_cat.h>

namespace r1r::dist {

absl::StatusOr<std::optional<SyncGroupOptions>> SyncGroupOptionsFromFlags(const config::Flags& f,
                                                                          const std::string& nccl_device) {
  const std::string store = f.Get("weight-sync-store");
  if (store.empty()) return std::nullopt;
  SyncGroupOptions o;
  if (absl::Status s = SetStoreAddress(store, &o); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--weight-sync-store: ", s.message()));
  }
  auto backend = ParseBackend(f.Get("weight-sync-backend"));
  if (!backend.ok()) return absl::InvalidArgumentError(absl::StrCat("--weight-sync-backend: ", backend.status().message()));
  o.backend = *backend;
  auto bucket_mb = f.GetIntInRange("weight-sync-bucket-mb", 1, 2048);
  if (!bucket_mb.ok()) return bucket_mb.status();
  o.bucket_bytes = *bucket_mb << 20;
  auto timeout = f.GetIntInRange("weight-sync-group-timeout-seconds", 1, 3600);
  if (!timeout.ok()) return timeout.status();
  o.timeout = std::chrono::seconds(*timeout);
  if (o.backend == Backend::kNccl) o.device = nccl_device;
  if (absl::Status s = Validate(o); !s.ok()) return s;
  return o;
}

}  // namespace r1r::dist
