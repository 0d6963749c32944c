// Command-line flags in the `--name value` / `--name=value` style the design card uses
// (--listen, --metrics-listen, ...). Flags are declared with defaults and help; unknown flags and
// missing values are errors that name the flag.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <absl/status/status.h>
#include <absl/status/statusor.h>

namespace r1r::config {

class Flags {
 public:
  // Declares a flag taking a value.
  Flags& Value(const std::string& name, std::string default_value, std::string help);
  // Declares a boolean switch (present = true).
  Flags& Switch(const std::string& name, std::string help);

  // Parses argv[first..]; non-flag arguments are collected as positionals.
  absl::Status Parse(int argc, const char* const* argv, int first = 1);

  const std::string& Get(const std::string& name) const;
  bool Has(const std::string& name) const;  // a switch was given / a value was set explicitly
  absl::StatusOr<int64_t> GetInt(const std::string& name) const;
  // GetInt, and an error naming the flag and the range when the value is outside [min, max].
  absl::StatusOr<int64_t> GetIntInRange(const std::string& name, int64_t min, int64_t max) const;
  absl::StatusOr<double> GetDouble(const std::string& name) const;
  const std::vector<std::string>& positionals() const { return positionals_; }
  std::string Help() const;

 private:
  struct Spec {
    std::string value;
    std::string help;
    bool is_switch = false;
    bool set = false;
  };
  std::map<std::string, Spec> specs_;
  std::vector<std::string> positionals_;
};

}  // namespace r1r::config
