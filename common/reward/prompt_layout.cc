#include "common/reward/prompt_layout.h"

#include <filesystem>
#include <fstream>

#include <absl/strings/str_cat.h>
#include <nlohmann/json.hpp>

namespace r1r::reward {
namespace fs = std::filesystem;

absl::StatusOr<ImagePlacement> ParseImagePlacement(std::string_view name) {
  if (name == "after_text") return ImagePlacement::kAfterText;
  if (name == "before_text") return ImagePlacement::kBeforeText;
  return absl::InvalidArgumentError(
      absl::StrCat("image_placement must be after_text or before_text, got '", std::string(name.substr(0, 64)), "'"));
}

const char* ImagePlacementName(ImagePlacement placement) {
  return placement == ImagePlacement::kAfterText ? "after_text" : "before_text";
}

absl::StatusOr<PromptLayout> ReadPromptLayout(const std::string& model_dir) {
  const fs::path path = fs::path(model_dir) / kPromptLayoutFileName;
  PromptLayout layout;
  if (!fs::exists(path)) return layout;
  std::ifstream in(path);
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  const auto invalid = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": ", what));
  };
  if (!j.is_object()) return invalid("not a JSON object");
  // Field by field, so a field of the wrong type is an error here, not a json exception later.
  // `absent`: the value of a field the file leaves out; null when the field is required.
  const auto text = [&](const char* key, const char* absent) -> absl::StatusOr<std::string> {
    if (!j.contains(key)) {
      if (absent == nullptr) return invalid(absl::StrCat(key, " is required"));
      return std::string(absent);
    }
    if (!j[key].is_string()) return invalid(absl::StrCat(key, " must be a string"));
    return j[key].get<std::string>();
  };
  // image_placement has no default inside the file: every file r1r writes names it.
  const absl::StatusOr<std::string> placement_name = text("image_placement", nullptr);
  if (!placement_name.ok()) return placement_name.status();
  auto placement = ParseImagePlacement(*placement_name);
  if (!placement.ok()) return invalid(std::string(placement.status().message()));
  layout.placement = *placement;
  const absl::StatusOr<std::string> style_name = text("prompt_style", "r1reward");
  if (!style_name.ok()) return style_name.status();
  auto style = ParsePromptStyle(*style_name);
  if (!style.ok()) {
    return invalid(absl::StrCat("prompt_style must be r1reward or compact, got '", style_name->substr(0, 64), "'"));
  }
  layout.style = *style;
  return layout;
}

absl::Status WritePromptLayout(const PromptLayout& layout, const std::string& model_dir) {
  std::error_code ec;
  fs::create_directories(model_dir, ec);
  const fs::path path = fs::path(model_dir) / kPromptLayoutFileName;
  std::ofstream out(path);
  out << nlohmann::json{{"image_placement", ImagePlacementName(layout.placement)},
                        {"prompt_style", PromptStyleName(layout.style)}}
             .dump()
      << "\n";
  out.close();
  return out ? absl::OkStatus() : absl::InternalError(absl::StrCat("cannot write ", path.string()));
}

}  // namespace r1r::reward
