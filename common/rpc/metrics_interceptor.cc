#include "common/rpc/metrics_interceptor.h"

#include <chrono>
#include <string>

#include "common/obs/metrics.h"
#include "common/rpc/handler_guard.h"

namespace r1r::rpc {
namespace {

std::string CodeName(grpc::StatusCode code) {
  static const char* kNames[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
                                 "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
                                 "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
                                 "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
  const int i = static_cast<int>(code);
  return i >= 0 && i <= 16 ? kNames[i] : "UNKNOWN";
}

// What grpc::internal::CatchingFunctionHandler answers when a handler throws (grpcpp/support/method_handler.h).
constexpr char kHandlerExceptionMessage[] = "Unexpected error in RPC handling";

class MetricsInterceptor : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(obs::Metrics* metrics, std::string method)
      : metrics_(metrics), method_(std::move(method)), start_(std::chrono::steady_clock::now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      grpc::Status status = methods->GetSendStatus();
      // gRPC answers a C++ exception that left a handler without GuardHandler with UNKNOWN and this fixed
      // text (the exception's own message is gone by then). The process goes on: say so, name the method,
      // count it. A guarded handler already answered INTERNAL with the message; it is only counted.
      const bool unguarded = status.error_code() == grpc::StatusCode::UNKNOWN &&
                             status.error_message() == kHandlerExceptionMessage;
      if (unguarded || methods->GetSendTrailingMetadata()->count(kHandlerExceptionKey) > 0) {
        metrics_->Counter("r1r_rpc_handler_exceptions_total",
                          "C++ exceptions caught at the edge of an RPC handler (answered INTERNAL) or a worker thread.")
            .Increment();
      }
      if (unguarded) {
        status = grpc::Status(grpc::StatusCode::INTERNAL,
                              method_ + ": the handler failed with an unexpected C++ exception on this request; "
                                        "the service goes on serving (its log and r1r_rpc_handler_exceptions_total "
                                        "count these)");
        methods->ModifySendStatus(status);
      }
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
      metrics_->Counter("r1r_rpc_requests_total", "RPCs handled, by method and status code.",
                        {{"method", method_}, {"code", CodeName(status.error_code())}})
          .Increment();
      metrics_->Histogram("r1r_rpc_request_seconds", "RPC handling time in seconds, by method.",
                          {{"method", method_}})
          .Observe(seconds);
    }
    methods->Proceed();
  }

 private:
  obs::Metrics* metrics_;
  std::string method_;
  std::chrono::steady_clock::time_point start_;
};

class MetricsInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit MetricsInterceptorFactory(obs::Metrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override {
    return new MetricsInterceptor(metrics_, info->method() ? info->method() : "unknown");
  }

 private:
  obs::Metrics* metrics_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeMetricsInterceptorFactory(
    obs::Metrics* metrics) {
  return std::make_unique<MetricsInterceptorFactory>(metrics);
}

}  // namespace r1r::rpc
