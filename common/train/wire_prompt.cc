#include "common/train/wire_prompt.h"

#include <utility>

#include <absl/strings/str_cat.h>

namespace r1r::train {

absl::StatusOr<std::vector<int64_t>> TokenIdsInRange(absl::Span<const int32_t> ids, int64_t vocab_size,
                                                     absl::string_view field) {
  std::vector<int64_t> out;
  out.reserve(ids.size());
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size) return absl::InvalidArgumentError(absl::StrCat(field, ": id ", id, " out of range"));
    out.push_back(id);
  }
  return out;
}

absl::StatusOr<EncodedPrompt> EncodeWirePrompt(PromptEncoder& encoder, const WirePrompt& prompt,
                                               const files::Roots& read_roots, int64_t vocab_size) {
  constexpr absl::string_view kImageField = "preference.sample.image_path";
  std::string image = ResolveImagePath(std::string(prompt.dataset), std::string(prompt.image_path));
  if (!image.empty()) {
    auto confined = read_roots.Confine(image, kImageField);
    if (!confined.ok()) return confined.status();
    if (absl::Status s = files::CheckRegularFile(*confined, kMaxImageFileBytes); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat(kImageField, ": ", s.message()));
    }
    image = *std::move(confined);
    if (absl::Status s = encoder.VerifyImage(image, std::string(prompt.image_sha256)); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("preference.sample: ", s.message()));
    }
  }
  if (prompt.token_ids.empty()) {
    auto encoded = encoder.Encode({std::string(prompt.question), std::string(prompt.response1),
                                   std::string(prompt.response2), image});
    if (!encoded.ok()) return absl::InvalidArgumentError(absl::StrCat("preference: ", encoded.status().message()));
    return encoded;
  }
  EncodedPrompt out;
  if (!image.empty()) {
    auto pixels = encoder.LoadImage(image);
    if (!pixels.ok()) return absl::InvalidArgumentError(absl::StrCat(kImageField, ": ", pixels.status().message()));
    out = *std::move(pixels);
  }
  auto ids = TokenIdsInRange(prompt.token_ids, vocab_size, "prompt_token_ids");
  if (!ids.ok()) return ids.status();
  out.ids = *std::move(ids);
  return out;
}

}  // namespace r1r::train
