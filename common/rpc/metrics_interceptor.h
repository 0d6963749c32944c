// Per-RPC metrics for every server: r1r_rpc_requests_total{method,code} and
// r1r_rpc_request_seconds{method} (histogram), recorded when the status is sent.
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
