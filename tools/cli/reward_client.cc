#include "tools/cli/reward_client.h"

#include <absl/strings/str_cat.h>

#include "common/files/paths.h"
#include "common/rpc/status.h"

namespace r1r::cli {

absl::StatusOr<std::string> ReadFileBytes(const std::string& path, uint64_t max_bytes) {
  return files::ReadRegularFile(path, max_bytes);
}

absl::StatusOr<v1::CompareResponse> CallCompare(v1::RewardModel::Stub& stub, const rpc::ClientOptions& options,
                                                const v1::CompareRequest& request) {
  v1::CompareResponse response;
  const grpc::Status st = rpc::CallWithRetry(options, rpc::RetryPolicy{}, [&](grpc::ClientContext& ctx) {
    return stub.Compare(&ctx, request, &response);
  });
  if (!st.ok()) return rpc::FromGrpc(st);
  return response;
}

}  // namespace r1r::cli
