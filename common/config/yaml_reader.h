// Reads a YAML mapping into typed fields while remembering where each value came from, so every
// error names the field ("rl.eps_clip: must be in (0, 1), got 1.5") and unknown keys (typos) are
// reported instead of silently ignored. yaml-cpp stays inside the .cc file.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <absl/status/status.h>

namespace r1r::config {

class YamlReader {
 public:
  // Parses `text`; a syntax error is recorded as the first error.
  static YamlReader Parse(const std::string& text);
  ~YamlReader();
  YamlReader(YamlReader&&) noexcept;

  // Optional scalar fields: left unchanged when the key is absent.
  void Read(const std::string& key, std::string* out);
  void Read(const std::string& key, double* out);
  void Read(const std::string& key, int64_t* out);
  void Read(const std::string& key, bool* out);
  void Read(const std::string& key, std::vector<double>* out);
  void Read(const std::string& key, std::vector<std::string>* out);
  // A nested mapping; `fn` runs with a reader for it (absent key: not run).
  void Section(const std::string& key, const std::function<void(YamlReader&)>& fn);
  bool Has(const std::string& key) const;

  // Records a validation error for `key` of this mapping.
  void Error(const std::string& key, const std::string& why);
  // Validation helpers; each records an error naming the field when the check fails. CheckRange
  // returns whether the value is in range (NaN never is), so a caller can guard arithmetic on it.
  bool CheckRange(const std::string& key, double value, double lo, double hi, bool lo_open = false,
                  bool hi_open = false);
  void CheckOneOf(const std::string& key, const std::string& value, const std::vector<std::string>& allowed);

  // All errors so far (this reader and its sections), plus unknown keys. OK when there are none.
  absl::Status Finish();

 private:
  struct State;
  YamlReader(std::shared_ptr<State> state, std::string path, const void* node);
  std::string FieldPath(const std::string& key) const;
  void MarkUsed(const std::string& key);
  void CollectUnknown();

  std::shared_ptr<State> state_;
  std::string path_;
  struct NodeHolder;
  std::unique_ptr<NodeHolder> node_;
  std::vector<std::string> used_;
};

}  // namespace r1r::config
