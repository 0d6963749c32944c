#include "common/tokenizer/tokenize_cli.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"

namespace r1r::tokenizer {
namespace {

using Json = nlohmann::json;

absl::Status LineError(size_t line_no, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("input line ", line_no, ": ", what));
}

}  // namespace

absl::Status RunTokenizeStream(const Tokenizer& tokenizer, bool decode, std::istream& in, std::ostream& out) {
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) return LineError(line_no, "not a JSON object");
    if (!decode) {
      auto it = j.find("text");
      if (it == j.end() || !it->is_string()) return LineError(line_no, "expected {\"text\": string}");
      absl::StatusOr<std::vector<int32_t>> ids = tokenizer.Encode(it->get_ref<const std::string&>());
      if (!ids.ok()) return LineError(line_no, ids.status().message());
      out << "{\"ids\":[" << absl::StrJoin(*ids, ",") << "]}\n";
    } else {
      auto it = j.find("ids");
      if (it == j.end() || !it->is_array()) return LineError(line_no, "expected {\"ids\": [int, ...]}");
      std::vector<int32_t> ids;
      ids.reserve(it->size());
      for (const Json& v : *it) {
        if (!v.is_number_integer()) return LineError(line_no, "ids must be integers");
        const int64_t id = v.get<int64_t>();
        if (id < 0 || id > INT32_MAX) return LineError(line_no, absl::StrCat("id ", id, " out of range"));
        ids.push_back(static_cast<int32_t>(id));
      }
      absl::StatusOr<std::string> text = tokenizer.Decode(ids);
      if (!text.ok()) return LineError(line_no, text.status().message());
      out << Json{{"text", *text}}.dump() << "\n";
    }
    if (!out) return absl::DataLossError("output stream failed");
  }
  return absl::OkStatus();
}

absl::Status RunTokenizeCli(const std::string& tokenizer_path, bool decode, std::istream& in, std::ostream& out) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromFile(tokenizer_path);
  if (!tokenizer.ok()) return tokenizer.status();
  return RunTokenizeStream(**tokenizer, decode, in, out);
}

}  // namespace r1r::tokenizer
