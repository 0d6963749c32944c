#include "common/tokenizer/tokenizer.h"

#include <climits>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/tokenizer/bpe_model.h"
#include "common/tokenizer/byte_level.h"
#include "common/tokenizer/pretokenizer.h"
#include "common/tokenizer/utf8.h"
#include "nlohmann/json.hpp"

namespace r1r::tokenizer {
namespace {

using Json = nlohmann::json;

const Json& Field(const Json& j, const char* key) {
  static const Json* const kNull = new Json();
  if (!j.is_object()) return *kNull;
  auto it = j.find(key);
  return it == j.end() ? *kNull : *it;
}

bool IsType(const Json& j, std::string_view type) {
  return j.is_object() && j.contains("type") && j["type"].is_string() && j["type"].get<std::string>() == type;
}

// Real tokenizer.json files nest a Sequence one or two levels deep; a hostile one nests 200k deep and
// would overflow the stack of these recursive readers.
constexpr int kMaxSequenceDepth = 32;

// What a JSON value is, for messages, without dump(): dump() recurses and overflows on deep nesting.
std::string Describe(const Json& j) {
  if (j.is_object() && j.contains("type") && j["type"].is_string()) {
    return absl::StrCat("type '", j["type"].get<std::string>().substr(0, 64), "'");
  }
  if (j.is_primitive()) return j.dump().substr(0, 64);
  return absl::StrCat("a JSON ", j.type_name());
}

// A token id: an integer in [0, 2^31 - 1).
absl::StatusOr<int32_t> TokenIdOf(const Json& id, const std::string& what) {
  if (!id.is_number_integer()) return absl::InvalidArgumentError(absl::StrCat("non-integer id for ", what));
  const bool in_range = id.is_number_unsigned() ? id.get<uint64_t>() < INT32_MAX
                                                : id.get<int64_t>() >= 0 && id.get<int64_t>() < INT32_MAX;
  if (!in_range) {
    return absl::InvalidArgumentError(absl::StrCat("id ", id.dump(), " for ", what, " is outside [0, 2^31 - 1)"));
  }
  return static_cast<int32_t>(id.get<int64_t>());
}

// Reads the normalizer; only NFC (alone or in a Sequence) and null are byte-level BPE cases we support.
absl::StatusOr<bool> ParseNormalizer(const Json& j, int depth = 0) {
  if (j.is_null()) return false;
  if (IsType(j, "NFC")) return true;
  if (IsType(j, "Sequence") && j.contains("normalizers") && j["normalizers"].is_array()) {
    if (depth >= kMaxSequenceDepth) {
      return absl::InvalidArgumentError(
          absl::StrCat("normalizer: Sequence nested more than ", kMaxSequenceDepth, " levels deep"));
    }
    bool nfc = false;
    for (const Json& n : j["normalizers"]) {
      absl::StatusOr<bool> one = ParseNormalizer(n, depth + 1);
      if (!one.ok()) return one.status();
      nfc = nfc || *one;
    }
    return nfc;
  }
  return absl::UnimplementedError(absl::StrCat("unsupported normalizer: ", Describe(j)));
}

// Collects the regex patterns of the pre-tokenizer, in application order.
absl::Status ParsePreTokenizer(const Json& j, std::vector<std::string>* patterns, int depth = 0) {
  if (j.is_null()) return absl::OkStatus();
  if (IsType(j, "Sequence") && j.contains("pretokenizers") && j["pretokenizers"].is_array()) {
    if (depth >= kMaxSequenceDepth) {
      return absl::InvalidArgumentError(
          absl::StrCat("pre_tokenizer: Sequence nested more than ", kMaxSequenceDepth, " levels deep"));
    }
    for (const Json& p : j["pretokenizers"]) {
      if (absl::Status s = ParsePreTokenizer(p, patterns, depth + 1); !s.ok()) return s;
    }
    return absl::OkStatus();
  }
  if (IsType(j, "Split")) {
    const Json& pattern = Field(j, "pattern");
    if (!pattern.is_object() || !pattern.contains("Regex") || !pattern["Regex"].is_string()) {
      return absl::UnimplementedError("Split pre-tokenizer without a Regex pattern is not supported");
    }
    if (j.value("behavior", std::string()) != "Isolated" || j.value("invert", false)) {
      return absl::UnimplementedError("only Split(behavior=Isolated, invert=false) is supported");
    }
    patterns->push_back(pattern["Regex"].get<std::string>());
    return absl::OkStatus();
  }
  if (IsType(j, "ByteLevel")) {
    if (j.value("add_prefix_space", false)) {
      return absl::UnimplementedError("ByteLevel(add_prefix_space=true) is not supported");
    }
    if (j.value("use_regex", true)) patterns->push_back(std::string(kGpt2SplitPattern));
    return absl::OkStatus();
  }
  return absl::UnimplementedError(absl::StrCat("unsupported pre_tokenizer: ", Describe(j)));
}

absl::Status ParseMerges(const Json& merges, std::vector<std::pair<std::string, std::string>>* out) {
  out->reserve(merges.size());
  for (const Json& m : merges) {
    if (m.is_string()) {  // legacy "a b"
      const std::string s = m.get<std::string>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat("malformed merge '", s, "'"));
      }
      out->emplace_back(s.substr(0, space), s.substr(space + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      out->emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      return absl::InvalidArgumentError(absl::StrCat("malformed merge #", out->size(), ": ", Describe(m)));
    }
  }
  return absl::OkStatus();
}

}  // namespace

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open tokenizer file '", path, "'"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = FromJson(buffer.str());
  if (!tok.ok()) {
    return absl::Status(tok.status().code(), absl::StrCat(path, ": ", tok.status().message()));
  }
  return tok;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromJson(std::string_view json_text) {
  // nlohmann throws on type mismatches inside a well-formed document; keep that at this edge.
  try {
    return FromJsonUnchecked(json_text);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("malformed tokenizer.json: ", e.what()));
  }
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromJsonUnchecked(std::string_view json_text) {
  Json j = Json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return absl::InvalidArgumentError("tokenizer.json is not a JSON object");
  const Json& model = Field(j, "model");
  if (!IsType(model, "BPE")) return absl::UnimplementedError("only BPE tokenizer models are supported");
  if (model.value("byte_fallback", false)) return absl::UnimplementedError("BPE byte_fallback is not supported");
  if (const Json& prefix = Field(model, "continuing_subword_prefix");
      !prefix.is_null() && !(prefix.is_string() && prefix.get<std::string>().empty())) {
    return absl::UnimplementedError("BPE continuing_subword_prefix is not supported");
  }
  if (!Field(model, "dropout").is_null()) return absl::UnimplementedError("BPE dropout is not supported");
  if (!model.contains("vocab") || !model["vocab"].is_object() || !model.contains("merges") ||
      !model["merges"].is_array()) {
    return absl::InvalidArgumentError("BPE model needs a 'vocab' object and a 'merges' array");
  }

  auto tok = std::unique_ptr<Tokenizer>(new Tokenizer());
  std::vector<std::pair<std::string, int32_t>> vocab;
  vocab.reserve(model["vocab"].size());
  for (const auto& [text, id] : model["vocab"].items()) {
    absl::StatusOr<int32_t> checked = TokenIdOf(id, absl::StrCat("'", text.substr(0, 64), "'"));
    if (!checked.ok()) return checked.status();
    vocab.emplace_back(text, *checked);
  }
  std::vector<std::pair<std::string, std::string>> merges;
  if (absl::Status s = ParseMerges(model["merges"], &merges); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<BpeModel>> bpe = BpeModel::Create(vocab, merges);
  if (!bpe.ok()) return bpe.status();
  tok->model_ = *std::move(bpe);
  tok->vocab_size_ = tok->model_->id_limit();

  absl::StatusOr<bool> nfc = ParseNormalizer(Field(j, "normalizer"));
  if (!nfc.ok()) return nfc.status();
  tok->nfc_ = *nfc;
  std::vector<std::string> patterns;
  if (absl::Status s = ParsePreTokenizer(Field(j, "pre_tokenizer"), &patterns); !s.ok()) return s;
  for (const std::string& p : patterns) {
    absl::StatusOr<std::unique_ptr<RegexSplitter>> splitter = RegexSplitter::Create(p);
    if (!splitter.ok()) return splitter.status();
    tok->splitters_.push_back(*std::move(splitter));
  }

  const Json& added = Field(j, "added_tokens");
  if (!added.is_null() && !added.is_array()) return absl::InvalidArgumentError("'added_tokens' is not an array");
  for (const Json& a : added) {
    if (!a.is_object() || !a.contains("id") || !a.contains("content")) {
      return absl::InvalidArgumentError("added_tokens entries need 'id' and 'content'");
    }
    if (a.value("lstrip", false) || a.value("rstrip", false) || a.value("single_word", false)) {
      return absl::UnimplementedError(absl::StrCat("added token '", a["content"].get<std::string>(),
                                                   "' uses lstrip/rstrip/single_word, which is not supported"));
    }
    absl::StatusOr<int32_t> id = TokenIdOf(a["id"], "an added token");
    if (!id.ok()) return id.status();
    AddedToken t{*id, a["content"].get<std::string>(), a.value("special", false)};
    if (t.content.empty()) return absl::InvalidArgumentError("added token with empty content");
    // The model's embedding table is sized by vocab_size(): ids far past the entries would make it huge.
    const int64_t limit = BpeModel::IdLimitFor(static_cast<int64_t>(vocab.size() + added.size()));
    if (t.id >= limit) {
      return absl::InvalidArgumentError(absl::StrCat("added token '", t.content.substr(0, 64), "' has id ", t.id,
                                                     ", far past the ", vocab.size() + added.size(),
                                                     " tokens defined (ids must stay below ", limit, ")"));
    }
    tok->added_by_id_[t.id] = tok->added_tokens_.size();
    tok->vocab_size_ = std::max(tok->vocab_size_, t.id + 1);
    tok->added_tokens_.push_back(std::move(t));
  }
  tok->added_matcher_ = std::make_unique<AddedTokenMatcher>(tok->added_tokens_);
  return tok;
}

void Tokenizer::EncodePlain(std::string_view text, std::vector<int32_t>* ids) const {
  // Pieces are byte ranges of `text`; each splitter refines the pieces of the previous one.
  std::vector<std::pair<size_t, size_t>> pieces{{0, text.size()}};
  std::vector<std::pair<size_t, size_t>> next;
  for (const auto& splitter : splitters_) {
    next.clear();
    next.reserve(text.size() / 3 + 4);
    for (const auto& [b, e] : pieces) splitter->Split(text.substr(b, e - b), b, &next);
    pieces.swap(next);
  }
  for (const auto& [b, e] : pieces) model_->Encode(text.substr(b, e - b), ids);
}

absl::StatusOr<std::vector<int32_t>> Tokenizer::Encode(std::string_view text) const {
  if (!IsValidUtf8(text)) return absl::InvalidArgumentError("text is not valid UTF-8");
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  for (const Segment& seg : added_matcher_->Split(text)) {
    if (seg.token_id >= 0) {
      ids.push_back(seg.token_id);
      continue;
    }
    if (nfc_) {
      absl::StatusOr<std::string> normalized = NormalizeNfc(seg.text);
      if (!normalized.ok()) return normalized.status();
      EncodePlain(*normalized, &ids);
    } else {
      EncodePlain(seg.text, &ids);
    }
  }
  return ids;
}

absl::StatusOr<std::string> Tokenizer::Decode(absl::Span<const int32_t> ids, bool skip_special_tokens) const {
  std::string bytes;
  for (int32_t id : ids) {
    if (auto it = added_by_id_.find(id); it != added_by_id_.end()) {
      const AddedToken& t = added_tokens_[it->second];
      if (skip_special_tokens && t.special) continue;
      // The ByteLevel decoder maps added-token text through the byte alphabet when it can.
      std::optional<std::string> raw = ByteLevelToBytes(t.content);
      bytes += raw ? *raw : t.content;
      continue;
    }
    const std::string* token = model_->TokenBytes(id);
    if (token == nullptr) return absl::OutOfRangeError(absl::StrCat("token id ", id, " is not in the vocabulary"));
    bytes += *token;
  }
  return Utf8Lossy(bytes);
}

std::optional<int32_t> Tokenizer::TokenToId(std::string_view token) const {
  for (const AddedToken& t : added_tokens_) {
    if (t.content == token) return t.id;
  }
  const int32_t id = model_->TokenId(token);
  if (id < 0) return std::nullopt;
  return id;
}

std::optional<std::string> Tokenizer::IdToToken(int32_t id) const {
  if (auto it = added_by_id_.find(id); it != added_by_id_.end()) return added_tokens_[it->second].content;
  if (model_->TokenBytes(id) == nullptr) return std::nullopt;
  return model_->TokenText(id);
}

}  // namespace r1r::tokenizer
