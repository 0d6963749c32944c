// A preference prompt as it arrives over the wire, turned into model input: the one place that
// resolves the image path under the read roots, checks the file and its sha256, loads the image and
// range-checks token ids. Used by the actor (GenerateRollouts) and both learner steps. A plain
// struct, filled by the service from its proto, keeps Protobuf out of this library.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <absl/status/statusor.h>
#include <absl/strings/string_view.h>
#include <absl/types/span.h>

#include "common/files/paths.h"
#include "common/train/prompt_encoder.h"

namespace r1r::train {

// An image file larger than this is refused before it is read (the decoder has its own pixel limits).
inline constexpr uint64_t kMaxImageFileBytes = 64 << 20;

// Views into the request; they must outlive the call.
struct WirePrompt {
  absl::string_view question;
  absl::string_view response1;
  absl::string_view response2;
  absl::string_view dataset;       // sample.dataset: where a relative image_path lies
  absl::string_view image_path;    // sample.image_path, "" = text only
  absl::string_view image_sha256;  // sample.image_sha256, "" = unchecked
  // The prompt's ids when the caller already has them (a trajectory's prompt): the image's
  // <|image_pad|> run must be in them. Empty: the prompt is rendered from the three texts.
  absl::Span<const int32_t> token_ids;
};

// The prompt as the model sees it. Errors name the field relative to the message that holds the
// preference ("preference.sample.image_path: ...", "prompt_token_ids: id 9 out of range"), so the
// caller prefixes its own ("prompts[3]."). Codes: PERMISSION_DENIED for an image outside
// `read_roots`, NOT_FOUND for a missing one, DATA_LOSS for a sha256 mismatch, INVALID_ARGUMENT
// otherwise. The image's resolved spelling is the encoder cache's key, so different spellings of one
// file are one entry.
absl::StatusOr<EncodedPrompt> EncodeWirePrompt(PromptEncoder& encoder, const WirePrompt& prompt,
                                               const files::Roots& read_roots, int64_t vocab_size);

// `ids` widened, or INVALID_ARGUMENT "<field>: id N out of range" for one outside [0, vocab_size).
absl::StatusOr<std::vector<int64_t>> TokenIdsInRange(absl::Span<const int32_t> ids, int64_t vocab_size,
                                                     absl::string_view field);

}  // namespace r1r::train
