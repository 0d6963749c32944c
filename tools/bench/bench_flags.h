// What the benches share: `--key=value` flags over a table of defaults, and exiting with the message of
// a failed step (a bench has nobody to return an error to).
#pragma once

#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <utility>

#include <absl/status/status.h>
#include <absl/status/statusor.h>

namespace r1r::bench {

// Sets flags[key] from each `--key=value` (a bare `--key` sets "1"); arguments without `--` are
// skipped. An unknown key is printed and makes it return false.
inline bool ParseFlags(int argc, char** argv, std::map<std::string, std::string>& flags) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) continue;
    a = a.substr(2);
    const size_t eq = a.find('=');
    const std::string key = a.substr(0, eq);
    if (!flags.count(key)) {
      std::cerr << "unknown flag --" << key << "\n";
      return false;
    }
    flags[key] = eq == std::string::npos ? "1" : a.substr(eq + 1);
  }
  return true;
}

template <typename T>
T Must(absl::StatusOr<T> v, const char* what) {
  if (!v.ok()) {
    std::cerr << what << ": " << v.status() << std::endl;
    std::exit(1);
  }
  return std::move(*v);
}

inline void Must(const absl::Status& s, const char* what) {
  if (!s.ok()) {
    std::cerr << what << ": " << s << std::endl;
    std::exit(1);
  }
}

}  // namespace r1r::bench
