#include "common/tokenizer/chat_template.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace r1r::tokenizer {
namespace {

constexpr char kImStart[] = "<|im_start|>";
constexpr char kImEnd[] = "<|im_end|>";
constexpr char kVisionStart[] = "<|vision_start|>";
constexpr char kVisionEnd[] = "<|vision_end|>";
constexpr char kImagePad[] = "<|image_pad|>";

// The template as a sequence of plain-text chunks and special tokens (image pads counted), so
// rendering and id encoding share one definition.
struct Piece {
  std::string text;      // plain text, or the special token's content
  bool special = false;
  int64_t repeat = 1;    // image pads
};

std::vector<Piece> TemplatePieces(const std::vector<TemplateMessage>& messages, bool add_generation_prompt) {
  std::vector<Piece> pieces;
  auto text = [&](std::string t) {
    if (t.empty()) return;
    if (!pieces.empty() && !pieces.back().special) {
      pieces.back().text += t;  // merge adjacent text so it is tokenised as one string
    } else {
      pieces.push_back({std::move(t), false, 1});
    }
  };
  auto special = [&](const char* t, int64_t repeat = 1) { pieces.push_back({t, true, repeat}); };
  for (size_t i = 0; i < messages.size(); ++i) {
    const TemplateMessage& m = messages[i];
    if (i == 0 && m.role != "system") {
      special(kImStart);
      text(absl::StrCat("system\n", kDefaultSystemPrompt));
      special(kImEnd);
      text("\n");
    }
    special(kImStart);
    text(m.role + "\n");
    for (const ContentItem& item : m.content) {
      if (item.kind == ContentItem::Kind::kImage) {
        special(kVisionStart);
        special(kImagePad, item.image_tokens);
        special(kVisionEnd);
      } else {
        text(item.text);
      }
    }
    special(kImEnd);
    text("\n");
  }
  if (add_generation_prompt) {
    special(kImStart);
    text("assistant\n");
  }
  return pieces;
}

}  // namespace

absl::StatusOr<int64_t> ImageTokenCount(int64_t grid_t, int64_t grid_h, int64_t grid_w, int64_t merge_size) {
  if (grid_t <= 0 || grid_h <= 0 || grid_w <= 0 || merge_size <= 0 || grid_h % merge_size || grid_w % merge_size) {
    return absl::InvalidArgumentError(absl::StrCat("image grid (", grid_t, ", ", grid_h, ", ", grid_w,
                                                   ") is not positive and divisible by merge_size ", merge_size));
  }
  return grid_t * grid_h * grid_w / (merge_size * merge_size);
}

std::string RenderChatTemplate(const std::vector<TemplateMessage>& messages, bool add_generation_prompt,
                               bool expand_images) {
  std::string out;
  for (const Piece& p : TemplatePieces(messages, add_generation_prompt)) {
    const int64_t n = p.special && p.text == kImagePad && !expand_images ? 1 : p.repeat;
    for (int64_t k = 0; k < n; ++k) out += p.text;
  }
  return out;
}

absl::StatusOr<std::vector<int32_t>> EncodeChat(const Tokenizer& tokenizer,
                                                const std::vector<TemplateMessage>& messages,
                                                bool add_generation_prompt) {
  std::vector<int32_t> ids;
  for (const Piece& p : TemplatePieces(messages, add_generation_prompt)) {
    if (p.special) {
      const std::optional<int32_t> id = tokenizer.TokenToId(p.text);
      if (!id) return absl::NotFoundError(absl::StrCat("tokenizer has no special token ", p.text));
      ids.insert(ids.end(), static_cast<size_t>(p.repeat), *id);
      continue;
    }
    absl::StatusOr<std::vector<int32_t>> part = tokenizer.Encode(p.text);
    if (!part.ok()) return part.status();
    ids.insert(ids.end(), part->begin(), part->end());
  }
  return ids;
}

}  // namespace r1r::tokenizer
