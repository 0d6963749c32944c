#include "tools/cli/reward_client.h"

#include <fstream>
#include <sstream>

#include <absl/strings/str_cat.h>

#include "common/rpc/status.h"

namespace r1r::cli {

absl::StatusOr<std::string> ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("cannot read ", path));
  return bytes.str();
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
