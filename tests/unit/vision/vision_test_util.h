#pragma once
// Golden files written by make_fixtures.py (Pillow + numpy), read by the vision tests.

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace r1r::vision::testing {

inline std::string TestData(const std::string& name) {
  return std::string(R1R_SOURCE_DIR) + "/tests/unit/vision/testdata/" + name;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline std::vector<uint8_t> ReadBytes(const std::string& path) {
  const std::string s = ReadFile(path);
  return {s.begin(), s.end()};
}

inline std::vector<float> ReadFloats(const std::string& path) {
  const std::string s = ReadFile(path);
  std::vector<float> v(s.size() / sizeof(float));
  std::memcpy(v.data(), s.data(), v.size() * sizeof(float));
  return v;
}

inline nlohmann::json Expected() { return nlohmann::json::parse(ReadFile(TestData("expected.json"))); }

}  // namespace r1r::vision::testing
