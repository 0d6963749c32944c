// Chat messages as the R1-Reward data holds them: a role and ordered content parts (text or image path).
// Rendering to Qwen chat tokens is the tokenizer's job; this is only the structure and its JSON form
// (the `message` field of an R1-Reward row is this list, JSON-encoded into a string).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace r1r::reward {

enum class ContentKind { kText, kImage };

struct ContentPart {
  ContentKind kind = ContentKind::kText;
  std::string value;  // the text, or the image path

  static ContentPart Text(std::string text) { return {ContentKind::kText, std::move(text)}; }
  static ContentPart Image(std::string path) { return {ContentKind::kImage, std::move(path)}; }
  bool operator==(const ContentPart&) const = default;
};

struct PromptMessage {
  std::string role;  // "system", "user" or "assistant"
  std::vector<ContentPart> content;
  bool operator==(const PromptMessage&) const = default;
};

// Training data (README example) puts the image after the text; evaluation puts it first.
enum class ImagePlacement { kBeforeText, kAfterText };

// One user turn holding the prompt text and, when `image_path` is non-empty, the image.
PromptMessage UserMessage(std::string prompt_text, std::string image_path, ImagePlacement placement);

// [{"role": ..., "content": [{"type": "text", "text": ...}, {"type": "image", "image": ...}]}]
std::string MessagesToJson(const std::vector<PromptMessage>& messages);
absl::StatusOr<std::vector<PromptMessage>> MessagesFromJson(std::string_view json);

}  // namespace r1r::reward
