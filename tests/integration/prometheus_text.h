#pragma once

#include <map>
#include <string>

#include <absl/status/statusor.h>

namespace r1r::testing {

// Parses the Prometheus text exposition format (version 0.0.4) strictly: HELP/TYPE comments,
// `name{label="value",...} value [timestamp]` samples. Returns sample name+labels -> value.
absl::StatusOr<std::multimap<std::string, double>> ParsePrometheusText(const std::string& text);

}  // namespace r1r::testing
