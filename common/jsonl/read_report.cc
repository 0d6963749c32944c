#include "common/jsonl/read_report.h"

#include "absl/strings/str_cat.h"

namespace r1r::jsonl {

void ReadReport::AddBad(const std::string& file, int64_t line, std::string reason) {
  ++bad_count;
  if (bad_rows.size() < kMaxBadRowsKept) bad_rows.push_back({file, line, std::move(reason)});
}

std::string ReadReport::Summary() const {
  std::string out = absl::StrCat(rows_ok, " of ", rows_seen, " rows ok, ", bad_count, " bad");
  for (const BadRow& b : bad_rows) absl::StrAppend(&out, "; ", b.file, ":", b.line, ": ", b.reason);
  if (static_cast<size_t>(bad_count) > bad_rows.size()) absl::StrAppend(&out, "; ...");
  return out;
}

}  // namespace r1r::jsonl
