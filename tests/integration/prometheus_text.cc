#include "tests/integration/prometheus_text.h"

#include <regex>
#include <set>
#include <sstream>

#include <absl/strings/ascii.h>
#include <absl/strings/numbers.h>
#include <absl/strings/str_cat.h>

namespace r1r::testing {

absl::StatusOr<std::multimap<std::string, double>> ParsePrometheusText(const std::string& text) {
  static const std::regex kHelp(R"(^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*$)");
  static const std::regex kType(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$)");
  static const std::regex kSample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? (\S+)( -?\d+)?$)");
  std::multimap<std::string, double> samples;
  std::set<std::string> typed;
  std::istringstream in(text);
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.empty()) continue;
    std::smatch m;
    if (line.rfind("# HELP", 0) == 0) {
      if (!std::regex_match(line, kHelp)) return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": bad HELP"));
      continue;
    }
    if (line.rfind("# TYPE", 0) == 0) {
      if (!std::regex_match(line, m, kType)) return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": bad TYPE"));
      if (!typed.insert(m[1]).second) return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": TYPE twice"));
      continue;
    }
    if (line[0] == '#') continue;
    if (!std::regex_match(line, m, kSample)) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": not a sample: ", line));
    }
    const std::string value = absl::AsciiStrToLower(m[5].str());
    double v = 0;
    if (value == "nan") {
      v = std::numeric_limits<double>::quiet_NaN();
    } else if (value == "+inf" || value == "inf") {
      v = std::numeric_limits<double>::infinity();
    } else if (value == "-inf") {
      v = -std::numeric_limits<double>::infinity();
    } else if (!absl::SimpleAtod(value, &v)) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": bad value ", value));
    }
    samples.emplace(m[1].str() + m[2].str(), v);
  }
  if (samples.empty()) return absl::InvalidArgumentError("no samples");
  return samples;
}

}  // namespace r1r::testing
