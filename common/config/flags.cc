#include "common/config/flags.h"

#include <absl/strings/numbers.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>

namespace r1r::config {

Flags& Flags::Value(const std::string& name, std::string default_value, std::string help) {
  specs_[name] = Spec{std::move(default_value), std::move(help), false, false};
  return *this;
}

Flags& Flags::Switch(const std::string& name, std::string help) {
  specs_[name] = Spec{"false", std::move(help), true, false};
  return *this;
}

absl::Status Flags::Parse(int argc, const char* const* argv, int first) {
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0 || arg == "--") {
      positionals_.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    std::string value;
    bool has_inline_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_inline_value = true;
    }
    auto it = specs_.find(name);
    if (it == specs_.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name, "\n", Help()));
    }
    Spec& spec = it->second;
    if (spec.is_switch) {
      spec.value = has_inline_value ? value : "true";
    } else if (has_inline_value) {
      spec.value = value;
    } else {
      if (i + 1 >= argc) return absl::InvalidArgumentError(absl::StrCat("flag --", name, " needs a value"));
      spec.value = argv[++i];
    }
    spec.set = true;
  }
  return absl::OkStatus();
}

const std::string& Flags::Get(const std::string& name) const {
  static const std::string kEmpty;
  auto it = specs_.find(name);
  return it == specs_.end() ? kEmpty : it->second.value;
}

bool Flags::Has(const std::string& name) const {
  auto it = specs_.find(name);
  if (it == specs_.end()) return false;
  return it->second.is_switch ? it->second.value == "true" : it->second.set;
}

absl::StatusOr<int64_t> Flags::GetInt(const std::string& name) const {
  int64_t v = 0;
  if (!absl::SimpleAtoi(Get(name), &v)) {
    return absl::InvalidArgumentError(absl::StrCat("flag --", name, ": '", Get(name), "' is not an integer"));
  }
  return v;
}

absl::StatusOr<int64_t> Flags::GetIntInRange(const std::string& name, int64_t min, int64_t max) const {
  auto v = GetInt(name);
  if (!v.ok()) return v.status();
  if (*v < min || *v > max) {
    return absl::InvalidArgumentError(absl::StrCat("flag --", name, " must be ", min, "..", max, ", got ", *v));
  }
  return *v;
}

absl::StatusOr<double> Flags::GetDouble(const std::string& name) const {
  double v = 0;
  if (!absl::SimpleAtod(Get(name), &v)) {
    return absl::InvalidArgumentError(absl::StrCat("flag --", name, ": '", Get(name), "' is not a number"));
  }
  return v;
}

std::string Flags::Help() const {
  std::string out = "flags:\n";
  for (const auto& [name, spec] : specs_) {
    absl::StrAppendFormat(&out, "  --%-22s %s%s\n", name, spec.help,
                          spec.is_switch || spec.value.empty() ? "" : absl::StrCat(" (default ", spec.value, ")"));
  }
  return out;
}

}  // namespace r1r::config
