// What `r1r compare` and `r1r eval` share: reading an image for the wire and one Compare call.
#pragma once

#include <cstdint>
#include <string>

#include <absl/status/statusor.h>

#include "common/rpc/client.h"
#include "r1r/v1/serve.grpc.pb.h"

namespace r1r::cli {

// The bytes of a regular file of at most `max_bytes` (an image: r1r-serve's default limit), read without
// blocking on a FIFO. NOT_FOUND when it is missing, INVALID_ARGUMENT for a FIFO, device or larger file.
absl::StatusOr<std::string> ReadFileBytes(const std::string& path, uint64_t max_bytes = uint64_t{16} << 20);

// One Compare with the options' deadline and token, retried while the server is UNAVAILABLE.
absl::StatusOr<v1::CompareResponse> CallCompare(v1::RewardModel::Stub& stub, const rpc::ClientOptions& options,
                                                const v1::CompareRequest& request);

}  // namespace r1r::cli
