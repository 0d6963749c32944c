#include "common/train/checkpoint_state.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <absl/strings/str_cat.h>
#include <nlohmann/json.hpp>

namespace r1r::train {
namespace {

constexpr char kFileName[] = "state.json";

// The whole file; NOT_FOUND when it does not exist, `unreadable` when it cannot be read.
absl::StatusOr<std::string> ReadText(const std::filesystem::path& path, absl::StatusCode unreadable) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return absl::NotFoundError(absl::StrCat(path.string(), " does not exist"));
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) return absl::Status(unreadable, absl::StrCat("cannot read ", path.string()));
  return text.str();
}

}  // namespace

std::string CheckpointState::ToJson() const {
  nlohmann::json j = {{"job_id", job_id},
                      {"phase", phase},
                      {"policy_version", policy_version},
                      {"sft_steps", sft_steps},
                      {"rl_steps", rl_steps},
                      {"skipped_steps", skipped_steps},
                      {"data_cursor", data_cursor},
                      {"optimizer_steps", optimizer_steps}};
  return j.dump(2);
}

absl::StatusOr<CheckpointState> CheckpointState::Parse(const std::string& text, const std::string& file) {
  CheckpointState s;
  try {
    const auto j = nlohmann::json::parse(text);
    s.policy_version = j.at("policy_version").get<int64_t>();
    s.sft_steps = j.at("sft_steps").get<int64_t>();
    s.rl_steps = j.at("rl_steps").get<int64_t>();
    s.skipped_steps = j.value("skipped_steps", int64_t{0});
    s.data_cursor = j.value("data_cursor", int64_t{0});
    s.optimizer_steps = j.value("optimizer_steps", int64_t{0});
    s.job_id = j.value("job_id", std::string());
    s.phase = j.value("phase", std::string());
  } catch (const nlohmann::json::exception& e) {
    return absl::DataLossError(absl::StrCat(file, ": ", e.what()));
  }
  return s;
}

absl::StatusOr<CheckpointState> CheckpointState::Read(const std::string& dir) {
  const std::filesystem::path path = std::filesystem::path(dir) / kFileName;
  auto text = ReadText(path, absl::StatusCode::kDataLoss);
  if (!text.ok()) return text.status();
  return Parse(*text, path.string());
}

absl::StatusOr<int64_t> ReadPublishedPolicyVersion(const std::string& model_dir) {
  const std::filesystem::path path = std::filesystem::path(model_dir) / kFileName;
  auto text = ReadText(path, absl::StatusCode::kFailedPrecondition);
  if (absl::IsNotFound(text.status())) return 0;
  if (!text.ok()) return text.status();
  const nlohmann::json j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::FailedPreconditionError(absl::StrCat(path.string(), " is not a JSON object"));
  }
  for (const char* key : {"policy_version", "version"}) {
    if (j.contains(key) && j[key].is_number_integer()) return j[key].get<int64_t>();
  }
  return 0;
}

}  // namespace r1r::train
