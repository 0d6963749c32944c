// Structured logging for every r1r process: spdlog with one line per event, `key=value` fields.
#pragma once

#include <string_view>

#include <absl/strings/string_view.h>
#include <spdlog/spdlog.h>

// Debian's abseil has its own string_view type; let fmt/spdlog print it (status messages).
template <>
struct fmt::formatter<absl::string_view> : fmt::formatter<fmt::string_view> {
  template <typename Ctx>
  auto format(absl::string_view s, Ctx& ctx) const {
    return fmt::formatter<fmt::string_view>::format(fmt::string_view(s.data(), s.size()), ctx);
  }
};

namespace r1r::obs {

// Sets the default logger's format ("<time> <level> <service> <message>") and level
// (R1R_LOG_LEVEL: trace|debug|info|warn|error; default info). Logs go to stderr.
void InitLogging(std::string_view service);

}  // namespace r1r::obs
