#include "common/reward/chat.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace r1r::reward {

PromptMessage UserMessage(std::string prompt_text, std::string image_path, ImagePlacement placement) {
  PromptMessage message{"user", {}};
  const bool has_image = !image_path.empty();
  if (has_image && placement == ImagePlacement::kBeforeText) {
    message.content.push_back(ContentPart::Image(std::move(image_path)));
  }
  message.content.push_back(ContentPart::Text(std::move(prompt_text)));
  if (has_image && placement == ImagePlacement::kAfterText) {
    message.content.push_back(ContentPart::Image(std::move(image_path)));
  }
  return message;
}

std::string MessagesToJson(const std::vector<PromptMessage>& messages) {
  nlohmann::json list = nlohmann::json::array();
  for (const PromptMessage& m : messages) {
    nlohmann::json content = nlohmann::json::array();
    for (const ContentPart& part : m.content) {
      if (part.kind == ContentKind::kText) {
        content.push_back({{"type", "text"}, {"text", part.value}});
      } else {
        content.push_back({{"type", "image"}, {"image", part.value}});
      }
    }
    list.push_back({{"role", m.role}, {"content", std::move(content)}});
  }
  return list.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::StatusOr<std::vector<PromptMessage>> MessagesFromJson(std::string_view json) {
  const nlohmann::json parsed = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return absl::InvalidArgumentError("message is not valid JSON");
  if (!parsed.is_array()) return absl::InvalidArgumentError("message is not a JSON list of chat turns");
  std::vector<PromptMessage> messages;
  for (const nlohmann::json& turn : parsed) {
    if (!turn.is_object() || !turn.contains("role") || !turn["role"].is_string()) {
      return absl::InvalidArgumentError("chat turn without a string 'role'");
    }
    PromptMessage m{turn["role"].get<std::string>(), {}};
    const auto content = turn.find("content");
    if (content == turn.end()) return absl::InvalidArgumentError("chat turn without 'content'");
    if (content->is_string()) {  // plain-text turn
      m.content.push_back(ContentPart::Text(content->get<std::string>()));
    } else if (content->is_array()) {
      for (const nlohmann::json& part : *content) {
        // Types are checked before reading: json::value("type", "") throws when "type" is 5 or null.
        if (!part.is_object()) return absl::InvalidArgumentError("content part is not a JSON object");
        const auto type_it = part.find("type");
        if (type_it == part.end() || !type_it->is_string()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "content part 'type' must be \"text\" or \"image\", got ",
              type_it == part.end()         ? std::string("nothing")
              : type_it->is_primitive() ? type_it->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                                        : std::string("a JSON ") + type_it->type_name()));
        }
        const std::string type = type_it->get<std::string>();
        if (type == "text" && part.contains("text") && part["text"].is_string()) {
          m.content.push_back(ContentPart::Text(part["text"].get<std::string>()));
        } else if (type == "image" && part.contains("image") && part["image"].is_string()) {
          m.content.push_back(ContentPart::Image(part["image"].get<std::string>()));
        } else {
          return absl::InvalidArgumentError(
              absl::StrCat("unsupported content part (type '", type, "'); expected text or image"));
        }
      }
    } else {
      return absl::InvalidArgumentError("'content' must be a string or a list");
    }
    messages.push_back(std::move(m));
  }
  return messages;
}

}  // namespace r1r::reward
