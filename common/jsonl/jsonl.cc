#include "common/jsonl/jsonl.h"

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace r1r::jsonl {

absl::Status ForEachJsonlRow(const std::string& path, ReadReport& report,
                             const std::function<absl::Status(const nlohmann::json& row, int64_t line)>& fn) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::string text;
  int64_t line = 0;
  while (std::getline(in, text)) {
    ++line;
    if (text.find_first_not_of(" \t\r\n") == std::string::npos) continue;
    ++report.rows_seen;
    const nlohmann::json row = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (row.is_discarded()) {
      report.AddBad(path, line, "not valid JSON");
      continue;
    }
    if (!row.is_object()) {
      report.AddBad(path, line, "not a JSON object");
      continue;
    }
    // A row callback that trips over an unexpected JSON type must cost that row, not the process: the
    // exception becomes this line's reason (the callbacks check types, this is the backstop).
    absl::Status s;
    try {
      s = fn(row, line);
    } catch (const nlohmann::json::exception& e) {
      s = absl::InvalidArgumentError(absl::StrCat("unexpected JSON value: ", e.what()));
    }
    if (!s.ok()) {
      report.AddBad(path, line, std::string(s.message()));
      continue;
    }
    ++report.rows_ok;
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat("read error in ", path, " after line ", line));
  return absl::OkStatus();
}

absl::Status WriteJsonl(const std::string& path, const std::function<bool(nlohmann::json& row)>& next_row) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write ", tmp));
    nlohmann::json row;
    while (next_row(row)) {
      out << row.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
      row = nlohmann::json();
    }
    if (!out.flush()) return absl::DataLossError(absl::StrCat("write failed for ", tmp));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return absl::InternalError(absl::StrCat("rename ", tmp, " -> ", path, ": ", ec.message()));
  return absl::OkStatus();
}

absl::Status RequireString(const nlohmann::json& row, const char* key, std::string& out) {
  const auto it = row.find(key);
  if (it == row.end()) return absl::InvalidArgumentError(absl::StrCat("missing '", key, "'"));
  if (!it->is_string()) return absl::InvalidArgumentError(absl::StrCat("'", key, "' is not a string"));
  out = it->get<std::string>();
  return absl::OkStatus();
}

std::string ResolveAgainstFile(const std::string& data_file, const std::string& path) {
  if (path.empty()) return path;
  const std::filesystem::path p(path);
  if (p.is_absolute()) return path;
  return (std::filesystem::path(data_file).parent_path() / p).lexically_normal().string();
}

}  // namespace r1r::jsonl
