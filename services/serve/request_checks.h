// Input limits of the RewardModel service (proto/r1r/v1/serve.proto) and the image a request names.
// Every rejection is INVALID_ARGUMENT with a message that starts with the offending field, except an
// image.path outside the server's --data-root directories: PERMISSION_DENIED.
#pragma once

#include <cstdint>
#include <optional>

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include "common/files/paths.h"
#include "common/vision/image.h"
#include "r1r/v1/serve.pb.h"

namespace r1r::serve {

struct RequestLimits {
  size_t max_question_bytes = 16 << 10;
  size_t max_response_bytes = 32 << 10;
  int max_votes = 32;
  double max_temperature = 2.0;
  size_t max_image_bytes = 16 << 20;
  int max_image_side = 4096;  // pixels, each of width and height
  int max_new_tokens = 4096;
  int min_rank_responses = 2;
  int max_rank_responses = 16;
  // Rank generates votes x N x (N - 1) sequences; beyond this the request is refused.
  int64_t max_rank_sequences = 4096;
  // image.path must lie under one of these (r1r-serve's --data-root); with none, every path is refused.
  files::Roots image_roots;
};

absl::Status CheckCompareRequest(const v1::CompareRequest& req, const RequestLimits& limits);
absl::Status CheckRankRequest(const v1::RankRequest& req, const RequestLimits& limits);

// Decodes the request's image: inline PNG/JPEG bytes or a file the server can read. nullopt when the
// request has none. Corrupt data, a missing file or an image over the limits is INVALID_ARGUMENT; a path
// outside limits.image_roots is PERMISSION_DENIED.
absl::StatusOr<std::optional<vision::RgbImage>> DecodeRequestImage(const v1::ImageInput& image,
                                                                  const RequestLimits& limits);

// Sampling for votes K and a requested temperature: K <= 1 is one greedy sample; otherwise K samples at
// `temperature` (0 = the proto's default of 1.0). Returns (samples, temperature).
std::pair<int, double> VotePlan(int votes, double temperature);

}  // namespace r1r::serve
