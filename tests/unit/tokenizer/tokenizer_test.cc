// Unit tests of the byte-level BPE pieces on small hand-written vocabularies.
#include "common/tokenizer/tokenizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>
#include <tuple>

#include "common/tokenizer/byte_level.h"
#include "common/tokenizer/pretokenizer.h"
#include "common/tokenizer/tokenize_cli.h"
#include "common/tokenizer/utf8.h"
#include "nlohmann/json.hpp"

namespace r1r::tokenizer {
namespace {

using ::testing::ElementsAre;

TEST(tokenizer, ByteLevelAlphabet) {
  EXPECT_EQ(ByteToUnicodeText(' '), "Ġ");   // U+0120: 0x20 is the 33rd non-printable byte
  EXPECT_EQ(ByteToUnicodeText('\n'), "Ċ");  // U+010A
  EXPECT_EQ(ByteToUnicodeText(0), "Ā");     // U+0100
  EXPECT_EQ(ByteToUnicodeText('A'), "A");
  EXPECT_EQ(ByteToCodePoint(0xAD), 0x143u);  // soft hyphen, the last remapped byte
  EXPECT_EQ(ByteToCodePoint(0xFF), 0xFFu);
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  const std::optional<std::string> back = ByteLevelToBytes(BytesToByteLevel(all));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, all);
  EXPECT_FALSE(ByteLevelToBytes("\xE4\xB8\xAD").has_value());  // 中 is not in the alphabet
}

TEST(tokenizer, Utf8LossyMatchesRust) {
  EXPECT_TRUE(IsValidUtf8("héllo 中文 😀"));
  EXPECT_FALSE(IsValidUtf8("\xC0\x80"));      // overlong
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));  // surrogate
  EXPECT_FALSE(IsValidUtf8("\xF0\x9F\x98"));  // truncated
  // Rust's from_utf8_lossy: one U+FFFD per maximal invalid subpart.
  EXPECT_EQ(Utf8Lossy("a\xF0\x9F\x98"), "a\xEF\xBF\xBD");
  EXPECT_EQ(Utf8Lossy("\xC0\x80z"), "\xEF\xBF\xBD\xEF\xBF\xBDz");
  EXPECT_EQ(Utf8Lossy("\xE4\xB8x\xE4\xB8\xAD"), "\xEF\xBF\xBDx\xE4\xB8\xAD");
}

TEST(tokenizer, IcuPatternRewritesWhitespaceClasses) {
  EXPECT_EQ(ToIcuPattern(R"(\s+(?!\S)|[^\s\p{L}])"),
            R"(\p{White_Space}+(?!\P{White_Space})|[^\p{White_Space}\p{L}])");
  EXPECT_EQ(ToIcuPattern(R"(\\s\r\n)"), R"(\\s\r\n)");  // escaped backslash stays
}

std::vector<std::string> SplitQwen(std::string_view text) {
  auto splitter = RegexSplitter::Create(kQwenSplitPattern);
  EXPECT_TRUE(splitter.ok()) << splitter.status();
  std::vector<std::pair<size_t, size_t>> ranges;
  (*splitter)->Split(text, 0, &ranges);
  std::vector<std::string> pieces;
  for (const auto& [b, e] : ranges) pieces.emplace_back(text.substr(b, e - b));
  return pieces;
}

TEST(tokenizer, QwenPreTokenizerPieces) {
  EXPECT_THAT(SplitQwen("Hello world's 2024!!\n\n"),
              ElementsAre("Hello", " world", "'s", " ", "2", "0", "2", "4", "!!\n\n"));
  // `\s+(?!\S)` leaves the last space to prefix the next word.
  EXPECT_THAT(SplitQwen("a   b"), ElementsAre("a", "  ", " b"));
  EXPECT_THAT(SplitQwen("x \n\n y"), ElementsAre("x", " \n\n", " y"));
  EXPECT_THAT(SplitQwen("I'LL 中文"), ElementsAre("I", "'LL", " 中文"));
  // U+000B and U+0085 are whitespace for Oniguruma and for us.
  EXPECT_THAT(SplitQwen("a\x0B\x0B" "b"), ElementsAre("a", "\x0B", "\x0B" "b"));
}

// A tiny byte-level vocabulary: all 256 bytes plus a few merges.
std::string TinyTokenizerJson() {
  nlohmann::json vocab = nlohmann::json::object();
  int id = 0;
  for (int b = 0; b < 256; ++b) vocab[ByteToUnicodeText(static_cast<uint8_t>(b))] = id++;
  const std::vector<std::pair<std::string, std::string>> merges = {
      {"a", "a"}, {"b", "c"}, {"a", "bc"}, {"aa", "a"}, {"Ġ", "a"}};
  nlohmann::json merge_list = nlohmann::json::array();
  for (const auto& [l, r] : merges) {
    vocab[l + r] = id++;
    merge_list.push_back(l + " " + r);
  }
  nlohmann::json j = {
      {"added_tokens", {{{"id", 300}, {"content", "<|x|>"}, {"special", true}},
                        {{"id", 301}, {"content", "<|x|>y"}, {"special", false}}}},
      {"normalizer", {{"type", "NFC"}}},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"}, {"pattern", {{"Regex", std::string(kQwenSplitPattern)}}}, {"behavior", "Isolated"},
           {"invert", false}},
          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merge_list}}}};
  return j.dump();
}

TEST(tokenizer, BpeMergesByRankLeftmostFirst) {
  auto tok = Tokenizer::FromJson(TinyTokenizerJson());
  ASSERT_TRUE(tok.ok()) << tok.status();
  const int32_t a = *(*tok)->TokenToId("a"), aa = *(*tok)->TokenToId("aa"), aaa = *(*tok)->TokenToId("aaa");
  const int32_t abc = *(*tok)->TokenToId("abc"), sp_a = *(*tok)->TokenToId("Ġa");
  // "aaaa": (a,a) rank 0 merges leftmost first twice -> aa aa; (aa,a) never applies.
  EXPECT_THAT(*(*tok)->Encode("aaaa"), ElementsAre(aa, aa));
  // "aaa": aa a -> (aa,a) rank 3 -> aaa.
  EXPECT_THAT(*(*tok)->Encode("aaa"), ElementsAre(aaa));
  // "aabc": (a,a) rank 0 before (b,c) rank 1; then (a,bc) cannot apply because the a is gone.
  EXPECT_THAT(*(*tok)->Encode("aabc"), ElementsAre(aa, *(*tok)->TokenToId("bc")));
  EXPECT_THAT(*(*tok)->Encode("abc"), ElementsAre(abc));
  EXPECT_THAT(*(*tok)->Encode(" a"), ElementsAre(sp_a));
  EXPECT_THAT(*(*tok)->Encode("a"), ElementsAre(a));
  // Added tokens: leftmost, then longest.
  EXPECT_THAT(*(*tok)->Encode("a<|x|>y<|x|>"), ElementsAre(a, 301, 300));
  EXPECT_EQ((*tok)->vocab_size(), 302);
}

TEST(tokenizer, NfcBeforeBpe) {
  auto tok = Tokenizer::FromJson(TinyTokenizerJson());
  ASSERT_TRUE(tok.ok());
  // e + combining acute composes to é (2 UTF-8 bytes -> 2 byte tokens), not 3 bytes.
  EXPECT_EQ((*tok)->Encode("e\xCC\x81")->size(), 2u);
  EXPECT_EQ(*(*tok)->Encode("e\xCC\x81"), *(*tok)->Encode("\xC3\xA9"));
}

TEST(tokenizer, DecodeBytesAndSpecials) {
  auto tok = Tokenizer::FromJson(TinyTokenizerJson());
  ASSERT_TRUE(tok.ok());
  const std::string text = "aabc 中文 😀<|x|>y end";
  absl::StatusOr<std::vector<int32_t>> ids = (*tok)->Encode(text);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*(*tok)->Decode(*ids), text);
  EXPECT_EQ(*(*tok)->Decode(*(*tok)->Encode("a<|x|>b"), /*skip_special_tokens=*/true), "ab");
  // A lone continuation of 中 (bytes E4 B8 AD): first byte alone decodes to U+FFFD.
  std::vector<int32_t> first_byte = {*(*tok)->TokenToId(ByteToUnicodeText(0xE4))};
  EXPECT_EQ(*(*tok)->Decode(first_byte), "\xEF\xBF\xBD");
  EXPECT_EQ((*tok)->Decode(std::vector<int32_t>{9999}).status().code(), absl::StatusCode::kOutOfRange);
}

TEST(tokenizer, RejectsBadInput) {
  auto tok = Tokenizer::FromJson(TinyTokenizerJson());
  ASSERT_TRUE(tok.ok());
  EXPECT_EQ((*tok)->Encode("bad \xFF byte").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(Tokenizer::FromJson("{not json").ok());
  EXPECT_FALSE(Tokenizer::FromJson(R"({"model": {"type": "WordPiece"}})").ok());
  EXPECT_FALSE(Tokenizer::FromJson(R"({"model": {"type": "BPE", "vocab": {"a": "x"}, "merges": []}})").ok());
  // Merge naming a token missing from the vocabulary.
  nlohmann::json j = nlohmann::json::parse(TinyTokenizerJson());
  j["model"]["merges"].push_back("q z");
  const auto bad = Tokenizer::FromJson(j.dump());
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("merge #5"), std::string::npos) << bad.status();
  EXPECT_EQ(Tokenizer::FromFile("/nonexistent/tokenizer.json").status().code(), absl::StatusCode::kNotFound);
}

// `depth` Sequences of `key` around an NFC (normalizer) or ByteLevel (pre_tokenizer), as text: building
// it as a nlohmann::json would itself recurse when dumped.
std::string NestedSequence(int depth, const std::string& key, const std::string& leaf) {
  std::string s;
  for (int i = 0; i < depth; ++i) s += R"({"type": "Sequence", ")" + key + R"(": [)";
  s += leaf;
  for (int i = 0; i < depth; ++i) s += "]}";
  return s;
}

// The tiny tokenizer.json with top-level `field` set to the raw JSON text `value_json`.
std::string WithField(const std::string& field, const std::string& value_json) {
  nlohmann::json j = nlohmann::json::parse(TinyTokenizerJson());
  const std::string placeholder = "\"__PLACEHOLDER__\"";
  j[field] = "__PLACEHOLDER__";
  const std::string text = j.dump();
  const size_t p = text.find(placeholder);
  return text.substr(0, p) + value_json + text.substr(p + placeholder.size());
}

// A normalizer or pre_tokenizer nested 200k deep overflowed the stack (and crashed r1r-serve through
// Reload); the depth is bounded and the error says so.
TEST(tokenizer, DeeplyNestedSequencesAreRejected) {
  for (const auto& [field, key, leaf] :
       {std::tuple<std::string, std::string, std::string>{"normalizer", "normalizers", R"({"type": "NFC"})"},
        {"pre_tokenizer", "pretokenizers", R"({"type": "ByteLevel", "add_prefix_space": false})"}}) {
    const auto deep = Tokenizer::FromJson(WithField(field, NestedSequence(200000, key, leaf)));
    ASSERT_FALSE(deep.ok()) << field;
    EXPECT_THAT(std::string(deep.status().message()), ::testing::HasSubstr(field + ": Sequence nested more than 32"));
    // Real files nest one or two levels: still fine.
    const auto shallow = Tokenizer::FromJson(WithField(field, NestedSequence(3, key, leaf)));
    EXPECT_TRUE(shallow.ok()) << field << ": " << shallow.status();
  }
  // An unsupported, deeply nested value is described without dumping it (dump() recurses too).
  const auto odd = Tokenizer::FromJson(WithField("normalizer", NestedSequence(200000, "other", "null")));
  ASSERT_FALSE(odd.ok());
  EXPECT_THAT(std::string(odd.status().message()), ::testing::HasSubstr("unsupported normalizer: type 'Sequence'"));
  nlohmann::json j = nlohmann::json::parse(TinyTokenizerJson());
  j["model"]["merges"].push_back("__MERGE__");
  std::string text = j.dump();
  const size_t p = text.find("\"__MERGE__\"");
  text = text.substr(0, p) + std::string(200000, '[') + std::string(200000, ']') + text.substr(p + 11);
  const auto merge = Tokenizer::FromJson(text);
  ASSERT_FALSE(merge.ok());
  EXPECT_THAT(std::string(merge.status().message()), ::testing::HasSubstr("malformed merge #5: a JSON array"));
}

// A vocabulary id of 2^31 - 1 sized the dense id tables at 2^31 strings (bad_alloc); ids far past the
// number of tokens, or outside int32, are rejected with the token named.
TEST(tokenizer, TokenIdsFarPastTheVocabularyAreRejected) {
  nlohmann::json j = nlohmann::json::parse(TinyTokenizerJson());
  for (const int64_t id : {int64_t{2147483647}, int64_t{1} << 40, int64_t{-3}, int64_t{70000}}) {
    nlohmann::json bad = j;
    bad["model"]["vocab"]["zz"] = id;
    const auto tok = Tokenizer::FromJson(bad.dump());
    ASSERT_FALSE(tok.ok()) << id;
    EXPECT_THAT(std::string(tok.status().message()), ::testing::HasSubstr("'zz'")) << id;
  }
  nlohmann::json added = j;
  added["added_tokens"].push_back({{"id", 2147483647}, {"content", "<|big|>"}, {"special", true}});
  const auto tok = Tokenizer::FromJson(added.dump());
  ASSERT_FALSE(tok.ok());
  EXPECT_THAT(std::string(tok.status().message()), ::testing::HasSubstr("id 2147483647"));
  // Holes are allowed in proportion: the tiny vocabulary (~300 tokens) may use ids up to ~66k.
  nlohmann::json gap = j;
  gap["model"]["vocab"]["zz"] = 60000;
  const auto ok = Tokenizer::FromJson(gap.dump());
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ((*ok)->vocab_size(), 60001);
}

TEST(tokenizer, MergesInPairFormat) {
  nlohmann::json j = nlohmann::json::parse(TinyTokenizerJson());
  nlohmann::json pairs = nlohmann::json::array();
  for (const auto& m : j["model"]["merges"]) {
    const std::string s = m.get<std::string>();
    pairs.push_back({s.substr(0, s.find(' ')), s.substr(s.find(' ') + 1)});
  }
  j["model"]["merges"] = pairs;
  auto tok = Tokenizer::FromJson(j.dump());
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_THAT(*(*tok)->Encode("aaa"), ElementsAre(*(*tok)->TokenToId("aaa")));
}

TEST(tokenizer, CliEncodeThenDecode) {
  auto tok = Tokenizer::FromJson(TinyTokenizerJson());
  ASSERT_TRUE(tok.ok());
  std::istringstream in("{\"text\": \"aaa bc\"}\n\n{\"text\": \"中<|x|>\"}\n");
  std::ostringstream encoded;
  ASSERT_TRUE(RunTokenizeStream(**tok, /*decode=*/false, in, encoded).ok());
  const int32_t bc = *(*tok)->TokenToId("bc"), sp = *(*tok)->TokenToId("Ġ");
  const int32_t aaa = *(*tok)->TokenToId("aaa");
  std::istringstream first_line(encoded.str());
  std::string line;
  std::getline(first_line, line);
  EXPECT_EQ(line, "{\"ids\":[" + std::to_string(aaa) + "," + std::to_string(sp) + "," + std::to_string(bc) + "]}");
  std::istringstream back_in(encoded.str());
  std::ostringstream decoded;
  ASSERT_TRUE(RunTokenizeStream(**tok, /*decode=*/true, back_in, decoded).ok());
  EXPECT_EQ(decoded.str(), "{\"text\":\"aaa bc\"}\n{\"text\":\"中<|x|>\"}\n");
  std::istringstream bad("{\"text\": \"ok\"}\n{\"txt\": 1}\n");
  std::ostringstream sink;
  const absl::Status s = RunTokenizeStream(**tok, false, bad, sink);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("line 2"), std::string::npos) << s;
}

}  // namespace
}  // namespace r1r::tokenizer
