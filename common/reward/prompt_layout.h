// <model_dir>/r1r_prompt.json, the one owner of that format: where the image goes in the user turn and
// which comparison prompt the model was trained on, as {"image_placement": "after_text"|"before_text",
// "prompt_style": "r1reward"|"compact"}. Written when a job prepares its model directory; read by every
// process that renders prompts for the model (learner, actors, serve, the judge's model backend), so
// training and serving lay prompts out alike.
#pragma once

#include <string>
#include <string_view>

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include "common/reward/chat.h"
#include "common/reward/prompt_template.h"

namespace r1r::reward {

inline constexpr char kPromptLayoutFileName[] = "r1r_prompt.json";

// The defaults are those of a directory without the file (a plain Hugging Face model): image first, as
// Qwen2.5-VL's own examples do, and the paper's prompt.
struct PromptLayout {
  ImagePlacement placement = ImagePlacement::kBeforeText;
  PromptStyle style = PromptStyle::kR1Reward;
  bool operator==(const PromptLayout&) const = default;
};

absl::StatusOr<ImagePlacement> ParseImagePlacement(std::string_view name);  // after_text | before_text
const char* ImagePlacementName(ImagePlacement placement);

// The layout in <model_dir>/r1r_prompt.json, or the defaults when there is none. A file that is not a
// JSON object, or a field of the wrong type or value, is InvalidArgument naming the file and the field.
absl::StatusOr<PromptLayout> ReadPromptLayout(const std::string& model_dir);

// Writes <model_dir>/r1r_prompt.json (creating model_dir); the error names the file.
absl::Status WritePromptLayout(const PromptLayout& layout, const std::string& model_dir);

}  // namespace r1r::reward
