// What `r1r compare` and `r1r eval` share: reading an image for the wire and one Compare call.
#pragma once

#include <string>

#include <absl/status/statusor.h>

#include "common/rpc/client.h"
#include "r1r/v1/serve.grpc.pb.h"

namespace r1r::cli {

// The file's bytes (NOT_FOUND when it cannot be opened).
absl::StatusOr<std::string> ReadFileBytes(const std::string& path);

// One Compare with the options' deadline and token, retried while the server is UNAVAILABLE.
absl::StatusOr<v1::CompareResponse> CallCompare(v1::RewardModel::Stub& stub, const rpc::ClientOptions& options,
                                                const v1::CompareRequest& request);

}  // namespace r1r::cli
