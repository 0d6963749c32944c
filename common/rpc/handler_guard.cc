#include "common/rpc/handler_guard.h"

#include <string>

#include <absl/strings/str_cat.h>

#include "common/obs/log.h"

namespace r1r::rpc {

grpc::Status HandlerException(grpc::ServerContext* ctx, std::string_view method, std::string_view what) {
  constexpr size_t kMaxWhat = 512;  // a message may carry a backtrace; the log keeps it whole
  spdlog::error("{}: unexpected C++ exception: {}", method, what);
  if (ctx != nullptr) ctx->AddTrailingMetadata(kHandlerExceptionKey, "1");
  return grpc::Status(grpc::StatusCode::INTERNAL,
                      absl::StrCat(std::string(method), ": unexpected C++ exception: ",
                                   std::string(what.substr(0, kMaxWhat)), "; the service goes on serving (see its log)"));
}

}  // namespace r1r::rpc
