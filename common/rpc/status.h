// absl::Status <-> grpc::Status at the service edge. Codes map one to one; the message is kept.
#pragma once

#include <chrono>
#include <string>

#include <absl/status/status.h>
#include <grpcpp/support/status.h>

namespace r1r::rpc {

grpc::Status ToGrpc(const absl::Status& s);
absl::Status FromGrpc(const grpc::Status& s);

// The handlers' common replies: a bad request (the message names the field) and a call out of order.
inline grpc::Status Invalid(const std::string& msg) { return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, msg); }
inline grpc::Status Precondition(const std::string& msg) {
  return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, msg);
}

// Seconds elapsed since `start` on the steady clock, for latency metrics.
inline double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace r1r::rpc
