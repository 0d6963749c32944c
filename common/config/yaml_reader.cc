#include "common/config/yaml_reader.h"

#include <algorithm>
#include <cmath>

#include <absl/strings/str_cat.h>
#include <absl/strings/str_join.h>
#include <yaml-cpp/yaml.h>

namespace r1r::config {

struct YamlReader::State {
  std::vector<std::string> errors;
};

struct YamlReader::NodeHolder {
  YAML::Node node;
};

YamlReader YamlReader::Parse(const std::string& text) {
  auto state = std::make_shared<State>();
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    state->errors.push_back(absl::StrCat("YAML syntax error at line ", e.mark.line + 1, ": ", e.msg));
  }
  if (state->errors.empty() && !root.IsMap()) {
    state->errors.push_back("the document must be a YAML mapping (key: value lines)");
  }
  return YamlReader(state, "", &root);
}

YamlReader::YamlReader(std::shared_ptr<State> state, std::string path, const void* node)
    : state_(std::move(state)), path_(std::move(path)),
      node_(std::make_unique<NodeHolder>(NodeHolder{*static_cast<const YAML::Node*>(node)})) {}

YamlReader::~YamlReader() = default;
YamlReader::YamlReader(YamlReader&&) noexcept = default;

std::string YamlReader::FieldPath(const std::string& key) const {
  return path_.empty() ? key : absl::StrCat(path_, ".", key);
}

void YamlReader::MarkUsed(const std::string& key) { used_.push_back(key); }

bool YamlReader::Has(const std::string& key) const {
  return node_->node.IsMap() && node_->node[key].IsDefined() && !node_->node[key].IsNull();
}

void YamlReader::Error(const std::string& key, const std::string& why) {
  state_->errors.push_back(absl::StrCat(FieldPath(key), ": ", why));
}

namespace {
template <typename T>
bool Convert(const YAML::Node& n, T* out) {
  try {
    *out = n.as<T>();
    return true;
  } catch (const YAML::Exception&) {
    return false;
  }
}
}  // namespace

void YamlReader::Read(const std::string& key, std::string* out) {
  MarkUsed(key);
  if (!Has(key)) return;
  if (!node_->node[key].IsScalar() || !Convert(node_->node[key], out)) Error(key, "must be a string");
}

void YamlReader::Read(const std::string& key, double* out) {
  MarkUsed(key);
  if (!Has(key)) return;
  double v = 0;
  if (!node_->node[key].IsScalar() || !Convert(node_->node[key], &v)) return Error(key, "must be a number");
  if (!std::isfinite(v)) return Error(key, "must be finite");
  *out = v;
}

void YamlReader::Read(const std::string& key, int64_t* out) {
  MarkUsed(key);
  if (!Has(key)) return;
  if (!node_->node[key].IsScalar() || !Convert(node_->node[key], out)) Error(key, "must be an integer");
}

void YamlReader::Read(const std::string& key, bool* out) {
  MarkUsed(key);
  if (!Has(key)) return;
  if (!node_->node[key].IsScalar() || !Convert(node_->node[key], out)) Error(key, "must be true or false");
}

void YamlReader::Read(const std::string& key, std::vector<double>* out) {
  MarkUsed(key);
  if (!Has(key)) return;
  std::vector<double> v;
  if (!node_->node[key].IsSequence() || !Convert(node_->node[key], &v)) return Error(key, "must be a list of numbers");
  for (double x : v) {
    if (!std::isfinite(x)) return Error(key, absl::StrCat("must be a list of finite numbers, got ", x));
  }
  *out = std::move(v);
}

void YamlReader::Read(const std::string& key, std::vector<std::string>* out) {
  MarkUsed(key);
  if (!Has(key)) return;
  if (!node_->node[key].IsSequence() || !Convert(node_->node[key], out)) Error(key, "must be a list of strings");
}

void YamlReader::Section(const std::string& key, const std::function<void(YamlReader&)>& fn) {
  MarkUsed(key);
  if (!Has(key)) return;
  YAML::Node child = node_->node[key];
  if (!child.IsMap()) return Error(key, "must be a mapping");
  YamlReader sub(state_, FieldPath(key), &child);
  fn(sub);
  sub.CollectUnknown();
}

bool YamlReader::CheckRange(const std::string& key, double value, double lo, double hi, bool lo_open,
                            bool hi_open) {
  const bool below = lo_open ? value <= lo : value < lo;
  const bool above = hi_open ? value >= hi : value > hi;
  if (below || above || std::isnan(value)) {
    Error(key, absl::StrCat("must be in ", lo_open ? "(" : "[", lo, ", ", hi, hi_open ? ")" : "]",
                            ", got ", value));
    return false;
  }
  return true;
}

void YamlReader::CheckOneOf(const std::string& key, const std::string& value,
                            const std::vector<std::string>& allowed) {
  if (std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
    Error(key, absl::StrCat("must be one of ", absl::StrJoin(allowed, "|"), ", got '", value, "'"));
  }
}

void YamlReader::CollectUnknown() {
  if (!node_->node.IsMap()) return;
  for (const auto& kv : node_->node) {
    const std::string key = kv.first.as<std::string>("");
    if (std::find(used_.begin(), used_.end(), key) == used_.end()) Error(key, "unknown field");
  }
}

absl::Status YamlReader::Finish() {
  CollectUnknown();
  if (state_->errors.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(state_->errors, "; "));
}

}  // namespace r1r::config
