// Per-RPC metrics for every server: r1r_rpc_requests_total{method,code} and
// r1r_rpc_request_seconds{method} (histogram), recorded when the status is sent. A C++ exception that
// left a handler (gRPC answers UNKNOWN "Unexpected error in RPC handling") is answered INTERNAL naming
// the method instead, and counted in r1r_rpc_handler_exceptions_total.
#pragma once

#include <memory>

#include <grpcpp/support/server_interceptor.h>

namespace r1r::obs {
class Metrics;
}

namespace r1r::rpc {

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeMetricsInterceptorFactory(
    obs::Metrics* metrics);

}  // namespace r1r::rpc
