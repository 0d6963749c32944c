// The weight sync group's command-line flags, read the same way by r1r-learner and r1r-actor
// (--weight-sync-store, -backend, -bucket-mb, -group-timeout-seconds; docs/operations.md). Built with
// the services only: it reads config::Flags, which the torch-only build does not have.
#pragma once

#include <optional>
#include <string>

#include <absl/status/statusor.h>

#include "common/config/flags.h"
#include "common/dist/sync_group.h"

namespace r1r::dist {

// nullopt when --weight-sync-store is empty (the group is off); errors name the flag. `nccl_device`
// is where an NCCL member keeps its buffers (the learner's weights' device, the actor's --device).
absl::StatusOr<std::optional<SyncGroupOptions>> SyncGroupOptionsFromFlags(const config::Flags& f,
                                                                          const std::string& nccl_device);

}  // namespace r1r::dist
