// The c10d set-up the learner's ProcessGroup and the weight sync group share: the backend's options,
// the Gloo device and the timeout. Internal to r1r_dist (it includes c10d's headers, so only the
// library's .cc files include it).
#pragma once

#include <torch/version.h>  // TORCH_VERSION_MAJOR
#include <torch/csrc/distributed/c10d/Store.hpp>
#ifndef R1R_NO_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <string>

#include <absl/status/status.h>

#include "common/dist/process_group.h"

namespace r1r::dist {

// LibTorch 2 made ProcessGroupGloo/NCCL subclasses of c10d::Backend; in 1.13 (Debian 12) they are
// ProcessGroups. Both bases declare the collectives used here.
#if TORCH_VERSION_MAJOR >= 2
using CollectiveGroup = c10d::Backend;
#else
using CollectiveGroup = c10d::ProcessGroup;
#endif

// UNIMPLEMENTED naming what is missing when this build cannot run `backend` (no Gloo headers, a
// LibTorch built without NCCL).
absl::Status BackendBuilt(Backend backend);

// Rank `rank` of a `world`-rank group of `backend` that rendezvouses on `store` and waits at most
// `timeout` for the other ranks (forming, and each collective). Gloo talks over 127.0.0.1 when
// `host` (the rendezvous host) is a loopback address, otherwise over the interface the hostname
// names. Throws as c10d does: a rank that does not come in time, or a backend this build lacks.
c10::intrusive_ptr<CollectiveGroup> CreateCollectiveGroup(Backend backend, const c10::intrusive_ptr<c10d::Store>& store,
                                                          int rank, int world, std::chrono::milliseconds timeout,
                                                          const std::string& host);

}  // namespace r1r::dist
