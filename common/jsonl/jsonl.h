// Line-by-line JSONL reading that never throws: each line is parsed on its own, and a line that is not a
// JSON object, or that the row callback rejects, is counted as bad with file:line and the reason.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "absl/status/status.h"
#include "common/jsonl/read_report.h"

namespace r1r::jsonl {

// Returns an error only when the file cannot be read at all.
absl::Status ForEachJsonlRow(const std::string& path, ReadReport& report,
                             const std::function<absl::Status(const nlohmann::json& row, int64_t line)>& fn);

// Writes one compact JSON object per line (to path.tmp, then renamed).
absl::Status WriteJsonl(const std::string& path, const std::function<bool(nlohmann::json& row)>& next_row);

// A required string field, or an error naming it.
absl::Status RequireString(const nlohmann::json& row, const char* key, std::string& out);

// A path from a data file, made absolute against the folder of that file when relative.
std::string ResolveAgainstFile(const std::string& data_file, const std::string& path);

}  // namespace r1r::jsonl
