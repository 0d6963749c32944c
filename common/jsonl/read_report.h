// What a reader saw: rows read, rows kept, and each bad row with file:line and the reason.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace r1r::jsonl {

struct BadRow {
  std::string file;
  int64_t line = 0;  // 1-based
  std::string reason;
};

struct ReadReport {
  int64_t rows_seen = 0;  // non-blank lines
  int64_t rows_ok = 0;
  int64_t bad_count = 0;
  std::vector<BadRow> bad_rows;  // the first kMaxBadRowsKept of them, for messages and metrics
  static constexpr size_t kMaxBadRowsKept = 100;

  void AddBad(const std::string& file, int64_t line, std::string reason);
  // "path: 3 of 120 rows bad; path:7: missing 'answer'; ..."
  std::string Summary() const;
};

}  // namespace r1r::jsonl
