// absl::Status <-> grpc::Status at the service edge. Codes map one to one; the message is kept.
#pragma once

#include <absl/status/status.h>
#include <grpcpp/support/status.h>

namespace r1r::rpc {

grpc::Status ToGrpc(const absl::Status& s);
absl::Status FromGrpc(const grpc::Status& s);

}  // namespace r1r::rpc
