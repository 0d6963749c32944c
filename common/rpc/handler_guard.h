// The last line behind an RPC handler. The libraries turn the exceptions they expect (LibTorch's
// c10::Error, JSON errors) into absl::Status; whatever still escapes is caught here, so the caller reads
// what went wrong instead of gRPC's fixed "Unexpected error in RPC handling", and the service goes on.
// The metrics interceptor counts these in r1r_rpc_handler_exceptions_total, as it counts the ones that
// reach gRPC from a handler without a guard.
#pragma once

#include <exception>
#include <string_view>
#include <utility>

#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>

namespace r1r::rpc {

// Trailing metadata that marks a reply as an exception caught by GuardHandler (for the interceptor).
inline constexpr char kHandlerExceptionKey[] = "r1r-handler-exception";

// Logs `what`, marks the reply and returns INTERNAL naming `method` and `what` (cut to 512 bytes).
grpc::Status HandlerException(grpc::ServerContext* ctx, std::string_view method, std::string_view what);

// Runs `body` (returning grpc::Status); an exception that leaves it becomes HandlerException.
template <typename Body>
grpc::Status GuardHandler(grpc::ServerContext* ctx, std::string_view method, Body&& body) noexcept {
  try {
    return std::forward<Body>(body)();
  } catch (const std::exception& e) {
    return HandlerException(ctx, method, e.what());
  } catch (...) {
    return HandlerException(ctx, method, "an exception that is not a std::exception");
  }
}

}  // namespace r1r::rpc
