#include "common/tokenizer/bpe_trainer.h"

#include <algorithm>
#include <fstream>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/tokenizer/added_tokens.h"
#include "common/tokenizer/byte_level.h"
#include "common/tokenizer/pretokenizer.h"
#include "common/tokenizer/utf8.h"
#include "nlohmann/json.hpp"

namespace r1r::tokenizer {
namespace {

using OrderedJson = nlohmann::ordered_json;

uint64_t PairKey(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

struct Word {
  std::vector<int32_t> ids;
  int64_t count = 0;
};

// Word frequencies of the corpus after the same added-token split, NFC and regex as encoding.
absl::StatusOr<absl::flat_hash_map<std::string, int64_t>> CountPieces(absl::Span<const std::string> corpus,
                                                                      const std::vector<std::string>& specials) {
  absl::StatusOr<std::unique_ptr<RegexSplitter>> splitter = RegexSplitter::Create(kQwenSplitPattern);
  if (!splitter.ok()) return splitter.status();
  std::vector<AddedToken> added;
  for (const std::string& s : specials) added.push_back({0, s, true});
  const AddedTokenMatcher matcher(added);
  absl::flat_hash_map<std::string, int64_t> counts;
  std::vector<std::pair<size_t, size_t>> pieces;
  for (size_t i = 0; i < corpus.size(); ++i) {
    if (!IsValidUtf8(corpus[i])) return absl::InvalidArgumentError(absl::StrCat("corpus line ", i, " is not UTF-8"));
    for (const Segment& seg : matcher.Split(corpus[i])) {
      if (seg.token_id >= 0) continue;  // a special token: not learnt
      absl::StatusOr<std::string> text = NormalizeNfc(seg.text);
      if (!text.ok()) return text.status();
      pieces.clear();
      (*splitter)->Split(*text, 0, &pieces);
      for (const auto& [b, e] : pieces) ++counts[text->substr(b, e - b)];
    }
  }
  return counts;
}

}  // namespace

std::vector<std::string> QwenSpecialTokens() {
  return {"<|endoftext|>",    "<|im_start|>",   "<|im_end|>",   "<|vision_start|>",
          "<|vision_end|>",   "<|image_pad|>",  "<|video_pad|>"};
}

absl::StatusOr<std::string> TrainBpeTokenizerJson(absl::Span<const std::string> corpus,
                                                  const BpeTrainerOptions& options) {
  const int32_t num_specials = static_cast<int32_t>(options.special_tokens.size());
  if (options.vocab_size < 256 + num_specials) {
    return absl::InvalidArgumentError(absl::StrCat("vocab_size ", options.vocab_size, " is below the 256 byte tokens + ",
                                                   num_specials, " special tokens"));
  }
  for (const std::string& s : options.special_tokens) {
    if (s.empty() || !IsValidUtf8(s)) return absl::InvalidArgumentError("special tokens must be non-empty UTF-8");
  }
  absl::StatusOr<absl::flat_hash_map<std::string, int64_t>> counts = CountPieces(corpus, options.special_tokens);
  if (!counts.ok()) return counts.status();

  // Byte tokens: ids in code-point order of their byte-level characters.
  std::vector<uint8_t> byte_order(256);
  for (int b = 0; b < 256; ++b) byte_order[b] = static_cast<uint8_t>(b);
  std::sort(byte_order.begin(), byte_order.end(),
            [](uint8_t a, uint8_t b) { return ByteToCodePoint(a) < ByteToCodePoint(b); });
  std::vector<std::string> token_bytes;  // id -> raw bytes
  std::array<int32_t, 256> byte_id{};
  for (int32_t id = 0; id < 256; ++id) {
    byte_id[byte_order[id]] = id;
    token_bytes.emplace_back(1, static_cast<char>(byte_order[id]));
  }

  // Words sorted by text so that iteration order (and thus the result) is deterministic.
  std::vector<std::pair<std::string, int64_t>> sorted(counts->begin(), counts->end());
  std::sort(sorted.begin(), sorted.end());
  std::vector<Word> words;
  words.reserve(sorted.size());
  for (const auto& [text, count] : sorted) {
    Word w{{}, count};
    for (char c : text) w.ids.push_back(byte_id[static_cast<uint8_t>(c)]);
    words.push_back(std::move(w));
  }
  absl::flat_hash_map<uint64_t, int64_t> pair_counts;
  absl::flat_hash_map<uint64_t, absl::flat_hash_set<int32_t>> pair_words;
  auto add_pairs = [&](int32_t wi, int64_t sign) {
    const Word& w = words[wi];
    for (size_t i = 0; i + 1 < w.ids.size(); ++i) {
      const uint64_t key = PairKey(w.ids[i], w.ids[i + 1]);
      pair_counts[key] += sign * w.count;
      if (sign > 0) pair_words[key].insert(wi);
    }
  };
  for (int32_t wi = 0; wi < static_cast<int32_t>(words.size()); ++wi) add_pairs(wi, +1);

  std::vector<std::pair<int32_t, int32_t>> merges;
  // Two merges can spell the same bytes ("ab"+"c" and "a"+"bc"); the second reuses the id, as in
  // Hugging Face's trainer, so the vocabulary stays dense.
  absl::flat_hash_map<std::string, int32_t> id_of_bytes;
  for (int32_t id = 0; id < 256; ++id) id_of_bytes[token_bytes[id]] = id;
  const size_t max_tokens = static_cast<size_t>(options.vocab_size - num_specials);
  while (token_bytes.size() < max_tokens) {
    uint64_t best = 0;
    int64_t best_count = 0;
    for (const auto& [key, count] : pair_counts) {
      if (count < best_count || count <= 0) continue;
      if (count == best_count) {
        const auto a = static_cast<int32_t>(key >> 32), b = static_cast<int32_t>(key & 0xFFFFFFFF);
        const auto ba = static_cast<int32_t>(best >> 32), bb = static_cast<int32_t>(best & 0xFFFFFFFF);
        if (std::tie(token_bytes[a], token_bytes[b]) >= std::tie(token_bytes[ba], token_bytes[bb])) continue;
      }
      best = key;
      best_count = count;
    }
    if (best_count < std::max<int64_t>(options.min_frequency, 1)) break;
    const auto left = static_cast<int32_t>(best >> 32), right = static_cast<int32_t>(best & 0xFFFFFFFF);
    std::string merged_bytes = token_bytes[left] + token_bytes[right];
    auto [it, inserted] = id_of_bytes.try_emplace(merged_bytes, static_cast<int32_t>(token_bytes.size()));
    const int32_t new_id = it->second;
    if (inserted) token_bytes.push_back(std::move(merged_bytes));
    merges.emplace_back(left, right);
    const absl::flat_hash_set<int32_t> affected = std::move(pair_words[best]);
    pair_words.erase(best);
    std::vector<int32_t> affected_sorted(affected.begin(), affected.end());
    std::sort(affected_sorted.begin(), affected_sorted.end());
    for (int32_t wi : affected_sorted) {
      add_pairs(wi, -1);
      std::vector<int32_t>& ids = words[wi].ids;
      std::vector<int32_t> merged;
      merged.reserve(ids.size());
      for (size_t i = 0; i < ids.size(); ++i) {
        if (i + 1 < ids.size() && ids[i] == left && ids[i + 1] == right) {
          merged.push_back(new_id);
          ++i;
        } else {
          merged.push_back(ids[i]);
        }
      }
      ids.swap(merged);
      add_pairs(wi, +1);
    }
    pair_counts.erase(best);
  }

  OrderedJson vocab = OrderedJson::object();
  for (size_t id = 0; id < token_bytes.size(); ++id) vocab[BytesToByteLevel(token_bytes[id])] = id;
  OrderedJson merge_list = OrderedJson::array();
  for (const auto& [a, b] : merges) {
    merge_list.push_back(absl::StrCat(BytesToByteLevel(token_bytes[a]), " ", BytesToByteLevel(token_bytes[b])));
  }
  OrderedJson added = OrderedJson::array();
  for (int32_t i = 0; i < num_specials; ++i) {
    added.push_back({{"id", static_cast<int32_t>(token_bytes.size()) + i},
                     {"content", options.special_tokens[i]},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  }
  const OrderedJson byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false},
                                  {"use_regex", false}};
  OrderedJson doc = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", {{"type", "NFC"}}},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"},
           {"pattern", {{"Regex", std::string(kQwenSplitPattern)}}},
           {"behavior", "Isolated"},
           {"invert", false}},
          byte_level}}}},
      {"post_processor", byte_level},
      {"decoder", byte_level},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", ""},
        {"end_of_word_suffix", ""},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"ignore_merges", false},
        {"vocab", vocab},
        {"merges", merge_list}}}};
  return doc.dump(1);
}

absl::Status TrainBpeTokenizerFile(absl::Span<const std::string> corpus, const BpeTrainerOptions& options,
                                   const std::string& path) {
  absl::StatusOr<std::string> json = TrainBpeTokenizerJson(corpus, options);
  if (!json.ok()) return json.status();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write '", path, "'"));
  out << *json;
  out.close();
  if (!out) return absl::DataLossError(absl::StrCat("write to '", path, "' failed"));
  return absl::OkStatus();
}

}  // namespace r1r::tokenizer
