#pragma once
// The Qwen2.5-VL chat template (chat_template.json of Qwen2.5-VL-*-Instruct, add_vision_id=false):
//   <|im_start|>system\nYou are a helpful assistant.<|im_end|>\n     (only if the first message is not system)
//   <|im_start|>{role}\n{content items in order}<|im_end|>\n          (per message)
//   <|im_start|>assistant\n                                           (add_generation_prompt)
// An image item renders as <|vision_start|><|image_pad|><|vision_end|> with no newline around it;
// the processor then widens the single <|image_pad|> to grid_t*grid_h*grid_w/merge_size^2 copies.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/tokenizer/tokenizer.h"

namespace r1r::tokenizer {

inline constexpr char kDefaultSystemPrompt[] = "You are a helpful assistant.";

struct ContentItem {
  enum class Kind { kText, kImage };
  Kind kind = Kind::kText;
  std::string text;           // kText
  int64_t image_tokens = 0;   // kImage: number of <|image_pad|> tokens (see ImageTokenCount)

  static ContentItem Text(std::string t) { return {Kind::kText, std::move(t), 0}; }
  static ContentItem Image(int64_t tokens) { return {Kind::kImage, {}, tokens}; }
};

struct TemplateMessage {
  std::string role;  // "system", "user" or "assistant"
  std::vector<ContentItem> content;

  static TemplateMessage FromText(std::string role, std::string text) {
    return {std::move(role), {ContentItem::Text(std::move(text))}};
  }
};

// <|image_pad|> count for an image of grid (t, h, w) in patches: t*h*w / merge_size^2.
// InvalidArgument when h or w is not a multiple of merge_size.
absl::StatusOr<int64_t> ImageTokenCount(int64_t grid_t, int64_t grid_h, int64_t grid_w, int64_t merge_size = 2);

// The template text. With expand_images=false each image has a single <|image_pad|> (what
// apply_chat_template returns); with true it has image_tokens copies (what the model reads).
std::string RenderChatTemplate(const std::vector<TemplateMessage>& messages, bool add_generation_prompt,
                               bool expand_images = true);

// Token ids of the rendered template with the image pads expanded. Equal to
// tokenizer.Encode(RenderChatTemplate(messages, add_generation_prompt, true)), but splices the
// special ids directly. Needs the Qwen special tokens in the tokenizer (NotFound otherwise).
absl::StatusOr<std::vector<int32_t>> EncodeChat(const Tokenizer& tokenizer,
                                                const std::vector<TemplateMessage>& messages,
                                                bool add_generation_prompt);

}  // namespace r1r::tokenizer
