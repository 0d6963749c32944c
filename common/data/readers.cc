#include "common/data/readers.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/jsonl/jsonl.h"
#include "common/reward/prompt_template.h"
#include "common/reward/rewards.h"

namespace r1r::data {
namespace {

std::string RowId(const nlohmann::json& row, const std::string& path, int64_t line) {
  const auto it = row.find("id");
  if (it != row.end() && it->is_string()) return it->get<std::string>();
  if (it != row.end() && it->is_number_integer()) return std::to_string(it->get<int64_t>());
  return absl::StrCat(std::filesystem::path(path).filename().string(), ":", line);
}

absl::StatusOr<int> ParseLabel(const nlohmann::json& value) {
  if (value.is_number_integer()) {
    const int64_t v = value.get<int64_t>();
    if (v == 1 || v == 2) return static_cast<int>(v);
  } else if (value.is_string()) {
    const std::string v = reward::NormalizeLabel(value.get<std::string>());
    if (v == "1") return 1;
    if (v == "2") return 2;
  }
  // dump() recurses: a label nested 200k deep would overflow the stack, so containers are named by type.
  return absl::InvalidArgumentError(
      absl::StrCat("label must be 1 or 2, got ", value.is_primitive() ? value.dump().substr(0, 64) : value.type_name()));
}

absl::Status ParseR1RewardRow(const nlohmann::json& row, const std::string& path, int64_t line,
                              PreferenceSample& s) {
  std::string message;
  if (absl::Status st = jsonl::RequireString(row, "message", message); !st.ok()) return st;
  const auto answer = row.find("answer");
  if (answer == row.end() || !answer->is_array() || answer->empty()) {
    return absl::InvalidArgumentError("'answer' must be a non-empty list");
  }
  absl::StatusOr<int> label = ParseLabel((*answer)[0]);
  if (!label.ok()) return label.status();
  s.label = *label;
  absl::StatusOr<std::vector<reward::PromptMessage>> chat = reward::MessagesFromJson(message);
  if (!chat.ok()) return absl::InvalidArgumentError(absl::StrCat("'message': ", chat.status().message()));
  const reward::ContentPart* text = nullptr;
  for (const reward::PromptMessage& m : *chat) {
    if (m.role != "user") continue;
    for (const reward::ContentPart& part : m.content) {
      if (part.kind == reward::ContentKind::kText && text == nullptr) text = &part;
      if (part.kind == reward::ContentKind::kImage && s.image_path.empty()) {
        s.image_path = jsonl::ResolveAgainstFile(path, part.value);
      }
    }
  }
  if (text == nullptr) return absl::InvalidArgumentError("'message' has no user text");
  absl::StatusOr<reward::ComparisonPromptFields> fields = reward::ParseComparisonPrompt(text->value);
  if (!fields.ok()) return fields.status();
  s.question = std::move(fields->question);
  s.response1 = std::move(fields->response1);
  s.response2 = std::move(fields->response2);
  s.id = RowId(row, path, line);
  s.source = "r1reward";
  return absl::OkStatus();
}

absl::Status ParseMmRlhfRow(const nlohmann::json& row, const std::string& path, int64_t line, PreferenceSample& s) {
  if (absl::Status st = jsonl::RequireString(row, "prompt", s.question); !st.ok()) return st;
  if (absl::Status st = jsonl::RequireString(row, "chosen", s.response1); !st.ok()) return st;
  if (absl::Status st = jsonl::RequireString(row, "rejected", s.response2); !st.ok()) return st;
  std::string media;
  if (row.contains("image") && row["image"].is_string()) {
    media = row["image"].get<std::string>();
  } else if (row.contains("video") && row["video"].is_string()) {
    media = row["video"].get<std::string>();
    s.is_video = true;
  } else {
    return absl::InvalidArgumentError("missing 'image' or 'video'");
  }
  s.image_path = jsonl::ResolveAgainstFile(path, media);
  s.label = 1;
  s.id = RowId(row, path, line);
  s.source = "mmrlhf";
  return absl::OkStatus();
}

absl::Status ParsePlainRow(const nlohmann::json& row, const std::string& path, int64_t line, PreferenceSample& s) {
  if (absl::Status st = jsonl::RequireString(row, "question", s.question); !st.ok()) return st;
  if (absl::Status st = jsonl::RequireString(row, "response1", s.response1); !st.ok()) return st;
  if (absl::Status st = jsonl::RequireString(row, "response2", s.response2); !st.ok()) return st;
  std::string image;
  if (row.contains("image")) {
    if (absl::Status st = jsonl::RequireString(row, "image", image); !st.ok()) return st;
  }
  s.image_path = jsonl::ResolveAgainstFile(path, image);
  if (!row.contains("label")) return absl::InvalidArgumentError("missing 'label'");
  absl::StatusOr<int> label = ParseLabel(row["label"]);
  if (!label.ok()) return label.status();
  s.label = *label;
  if (row.contains("teacher_attempts")) {
    if (!row["teacher_attempts"].is_number_integer() || row["teacher_attempts"].get<int64_t>() < 0) {
      return absl::InvalidArgumentError("'teacher_attempts' must be a non-negative integer");
    }
    s.teacher_attempts = row["teacher_attempts"].get<int>();
  }
  if (row.contains("teacher_solved")) {
    if (!row["teacher_solved"].is_boolean()) return absl::InvalidArgumentError("'teacher_solved' must be a bool");
    s.teacher_solved = row["teacher_solved"].get<bool>();
  }
  if (row.contains("reasoning") && !row["reasoning"].is_null()) {
    std::string reasoning;
    if (absl::Status st = jsonl::RequireString(row, "reasoning", reasoning); !st.ok()) return st;
    s.reasoning = std::move(reasoning);
  }
  s.id = RowId(row, path, line);
  s.source = "pairs";
  return absl::OkStatus();
}

using RowParser = absl::Status (*)(const nlohmann::json&, const std::string&, int64_t, PreferenceSample&);

absl::StatusOr<std::vector<PreferenceSample>> ReadWith(const std::string& path, jsonl::ReadReport& report,
                                                       RowParser parse) {
  std::vector<PreferenceSample> samples;
  absl::Status status = jsonl::ForEachJsonlRow(path, report, [&](const nlohmann::json& row, int64_t line) {
    PreferenceSample s;
    if (absl::Status st = parse(row, path, line, s); !st.ok()) return st;
    samples.push_back(std::move(s));
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return samples;
}

}  // namespace

absl::StatusOr<std::vector<PreferenceSample>> ReadR1RewardJsonl(const std::string& path, jsonl::ReadReport& report) {
  return ReadWith(path, report, &ParseR1RewardRow);
}

absl::StatusOr<std::vector<PreferenceSample>> ReadMmRlhfPairsJsonl(const std::string& path, jsonl::ReadReport& report) {
  return ReadWith(path, report, &ParseMmRlhfRow);
}

absl::StatusOr<std::vector<PreferenceSample>> ReadPlainPairsJsonl(const std::string& path, jsonl::ReadReport& report) {
  return ReadWith(path, report, &ParsePlainRow);
}

absl::Status WritePlainPairsJsonl(const std::string& path, const std::vector<PreferenceSample>& samples) {
  size_t i = 0;
  return jsonl::WriteJsonl(path, [&](nlohmann::json& row) {
    if (i == samples.size()) return false;
    const PreferenceSample& s = samples[i++];
    row = {{"id", s.id},
           {"image", s.image_path},
           {"question", s.question},
           {"response1", s.response1},
           {"response2", s.response2},
           {"label", s.label},
           {"teacher_attempts", s.teacher_attempts},
           {"teacher_solved", s.teacher_solved}};
    if (s.reasoning.has_value()) row["reasoning"] = *s.reasoning;
    return true;
  });
}

absl::Status WriteR1RewardJsonl(const std::string& path, const std::vector<PreferenceSample>& samples,
                                reward::ImagePlacement placement) {
  size_t i = 0;
  return jsonl::WriteJsonl(path, [&](nlohmann::json& row) {
    if (i == samples.size()) return false;
    const PreferenceSample& s = samples[i++];
    const std::string prompt = reward::RenderComparisonPrompt(s.question, s.response1, s.response2);
    row = {{"id", s.id},
           {"question", s.question},
           {"message", reward::MessagesToJson({reward::UserMessage(prompt, s.image_path, placement)})},
           {"answer", nlohmann::json::array({absl::StrCat("<answer>", s.label, "</answer>")})}};
    return true;
  });
}

}  // namespace r1r::data
