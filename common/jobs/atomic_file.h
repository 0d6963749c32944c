// Crash-safe file replacement: write a temp file, fsync it, rename over the target, fsync the
// directory. A reader sees either the old or the new content, never a torn write.
#pragma once

#include <string>

#include <absl/status/status.h>
#include <absl/status/statusor.h>

namespace r1r::jobs {

absl::Status WriteFileAtomically(const std::string& path, const std::string& content);
absl::Status AppendLineDurably(const std::string& path, const std::string& line);
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

}  // namespace r1r::jobs
