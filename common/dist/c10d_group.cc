#include "common/dist/c10d_group.h"

#include <stdexcept>

#include <absl/strings/str_cat.h>

namespace r1r::dist {
namespace {

constexpr char kNoGloo[] = "built without Gloo headers (libgloo-dev); use nccl";
constexpr char kNoNccl[] = "this LibTorch was built without NCCL (USE_C10D_NCCL); use gloo";

}  // namespace

absl::Status BackendBuilt(Backend backend) {
#ifdef R1R_NO_GLOO
  if (backend == Backend::kGloo) return absl::UnimplementedError(absl::StrCat("dist: ", kNoGloo));
#endif
#ifndef USE_C10D_NCCL
  if (backend == Backend::kNccl) return absl::UnimplementedError(absl::StrCat("dist: ", kNoNccl));
#endif
  return absl::OkStatus();
}

c10::intrusive_ptr<CollectiveGroup> CreateCollectiveGroup(Backend backend, const c10::intrusive_ptr<c10d::Store>& store,
                                                          int rank, int world, std::chrono::milliseconds timeout,
                                                          const std::string& host) {
  if (backend == Backend::kGloo) {
#ifndef R1R_NO_GLOO
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    const bool loopback = host == "127.0.0.1" || host == "localhost" || host == "::1";
    options->devices.push_back(loopback ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                                        : c10d::ProcessGroupGloo::createDefaultDevice());
    return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world, options);
#else
    throw std::runtime_error(kNoGloo);
#endif
  }
#ifdef USE_C10D_NCCL
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = timeout;
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world, options);
#else
  throw std::runtime_error(kNoNccl);
#endif
}

}  // namespace r1r::dist
