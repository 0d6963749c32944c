#include "services/serve/request_checks.h"

#include <cmath>
#include <filesystem>
#include <system_error>

#include <absl/strings/str_cat.h>

#include "common/rpc/request_limits.h"
#include "common/vision/decode.h"

namespace r1r::serve {
namespace {

absl::Status Invalid(const std::string& field, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

absl::Status CheckText(const std::string& field, const std::string& value, size_t max_bytes) {
  if (value.empty() || value.size() > max_bytes) {
    return Invalid(field, absl::StrCat("must be 1 byte to ", max_bytes >> 10, " KiB, got ", value.size(), " bytes"));
  }
  return absl::OkStatus();
}

absl::Status CheckVotes(int votes, double temperature, const RequestLimits& limits) {
  if (votes < 0 || votes > limits.max_votes) {
    return Invalid("votes", absl::StrCat("must be 0..", limits.max_votes, ", got ", votes));
  }
  if (!std::isfinite(temperature) || temperature < 0.0 || temperature > limits.max_temperature) {
    return Invalid("temperature", absl::StrCat("must be 0..", limits.max_temperature, ", got ", temperature));
  }
  return absl::OkStatus();
}

absl::Status CheckImageInput(const v1::ImageInput& image, const RequestLimits& limits) {
  switch (image.source_case()) {
    case v1::ImageInput::kPngOrJpeg:
      if (image.png_or_jpeg().empty() || image.png_or_jpeg().size() > limits.max_image_bytes) {
        return Invalid("image.png_or_jpeg", absl::StrCat("must be 1 byte to ", limits.max_image_bytes >> 20,
                                                         " MiB, got ", image.png_or_jpeg().size(), " bytes"));
      }
      return absl::OkStatus();
    case v1::ImageInput::kPath: {
      if (image.path().empty() || image.path().size() > rpc::kMaxPathBytes) {
        return Invalid("image.path", absl::StrCat("must be 1 to ", rpc::kMaxPathBytes, " bytes"));
      }
      // Confined before anything is looked up, so a caller cannot probe what exists outside the roots.
      auto path = limits.image_roots.Confine(image.path(), "image.path");
      if (!path.ok()) return path.status();
      std::error_code ec;
      if (!std::filesystem::is_regular_file(*path, ec)) {
        return Invalid("image.path", absl::StrCat("no readable file '", image.path(), "' on the server"));
      }
      const auto size = std::filesystem::file_size(*path, ec);
      if (ec || size > limits.max_image_bytes) {
        return Invalid("image.path", absl::StrCat("file over ", limits.max_image_bytes >> 20, " MiB"));
      }
      return absl::OkStatus();
    }
    default:
      return absl::OkStatus();
  }
}

}  // namespace

absl::Status CheckCompareRequest(const v1::CompareRequest& req, const RequestLimits& limits) {
  if (absl::Status s = CheckText("question", req.question(), limits.max_question_bytes); !s.ok()) return s;
  if (absl::Status s = CheckText("response1", req.response1(), limits.max_response_bytes); !s.ok()) return s;
  if (absl::Status s = CheckText("response2", req.response2(), limits.max_response_bytes); !s.ok()) return s;
  if (absl::Status s = CheckVotes(req.votes(), req.temperature(), limits); !s.ok()) return s;
  if (req.max_new_tokens() < 0 || req.max_new_tokens() > limits.max_new_tokens) {
    return Invalid("max_new_tokens", absl::StrCat("must be 0..", limits.max_new_tokens, ", got ", req.max_new_tokens()));
  }
  if (req.has_image()) return CheckImageInput(req.image(), limits);
  return absl::OkStatus();
}

absl::Status CheckRankRequest(const v1::RankRequest& req, const RequestLimits& limits) {
  if (absl::Status s = CheckText("question", req.question(), limits.max_question_bytes); !s.ok()) return s;
  const int n = req.responses_size();
  if (n < limits.min_rank_responses || n > limits.max_rank_responses) {
    return Invalid("responses", absl::StrCat("need ", limits.min_rank_responses, "..", limits.max_rank_responses,
                                             " responses, got ", n));
  }
  for (int i = 0; i < n; ++i) {
    if (absl::Status s = CheckText(absl::StrCat("responses[", i, "]"), req.responses(i), limits.max_response_bytes);
        !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = CheckVotes(req.votes(), req.temperature(), limits); !s.ok()) return s;
  const int64_t sequences = static_cast<int64_t>(VotePlan(req.votes(), req.temperature()).first) * n * (n - 1);
  if (sequences > limits.max_rank_sequences) {
    return Invalid("votes", absl::StrCat("votes x N x (N-1) = ", sequences, " sequences, over the limit of ",
                                         limits.max_rank_sequences, "; use fewer votes or responses"));
  }
  if (req.has_image()) return CheckImageInput(req.image(), limits);
  return absl::OkStatus();
}

absl::StatusOr<std::optional<vision::RgbImage>> DecodeRequestImage(const v1::ImageInput& image,
                                                                  const RequestLimits& limits) {
  vision::DecodeLimits decode;
  decode.max_pixels = static_cast<int64_t>(limits.max_image_side) * limits.max_image_side;
  decode.max_file_bytes = static_cast<int64_t>(limits.max_image_bytes);
  absl::StatusOr<vision::RgbImage> rgb;
  std::string field;
  switch (image.source_case()) {
    case v1::ImageInput::kPngOrJpeg:
      field = "image.png_or_jpeg";
      rgb = vision::DecodeImage(image.png_or_jpeg(), decode);
      break;
    case v1::ImageInput::kPath: {
      field = "image.path";
      auto path = limits.image_roots.Confine(image.path(), field);
      if (!path.ok()) return path.status();
      rgb = vision::LoadImageFile(*path, decode);
      break;
    }
    default:
      return std::optional<vision::RgbImage>();
  }
  if (!rgb.ok()) return Invalid(field, std::string(rgb.status().message()));
  if (rgb->width > limits.max_image_side || rgb->height > limits.max_image_side) {
    return Invalid(field, absl::StrCat(rgb->width, "x", rgb->height, " pixels, over ", limits.max_image_side, "x",
                                       limits.max_image_side));
  }
  return std::optional<vision::RgbImage>(*std::move(rgb));
}

std::pair<int, double> VotePlan(int votes, double temperature) {
  if (votes <= 1) return {1, 0.0};
  return {votes, temperature > 0.0 ? temperature : 1.0};
}

}  // namespace r1r::serve
