// Randomised parity with Hugging Face tokenizers: strings drawn from the character classes the
// pre-tokenizer regex distinguishes (letters of several scripts, digits incl. non-ASCII ones,
// every kind of whitespace, punctuation, apostrophe contractions, combining marks, emoji,
// fragments of special tokens). Deterministic seed, so failures reproduce.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <thread>

#include "common/tokenizer/tokenizer.h"
#include "common/tokenizer/utf8.h"
#include "tests/unit/tokenizer/hf_reference.h"

namespace r1r::tokenizer {
namespace {

std::vector<std::string> RandomTexts(size_t count, uint32_t seed) {
  const std::vector<std::string> atoms = {
      "a", "Z", "hello", " world", "The", "é", "e\xCC\x81", "ß", "ſ", "İ", "中", "文字", "ア", "한", "й", "Ж",
      "ع", "न", "ि", "0", "7", "42", "٣", "①", "½", "²", " ", "  ", "\t", "\n", "\r\n", "\r", "\x0B", "\x0C",
      "\xC2\x85", "\xC2\xA0", "\xE2\x80\xA8", "\xE3\x80\x80", "\xE2\x80\x8B", ".", ",", "!", "?", "'", "\"", "-",
      "_", "(", ")", "{", "}", "<", ">", "|", "/", "\\", "#", "@", "$", "%", "&", "*", "+", "=", "~", "`", "'s",
      "'S", "'ll", "'LL", "'re", "'ve", "'m", "'d", "'t", "😀", "👍🏽", "👨‍👩‍👧", "🇯🇵", "❤️", "\xF0\x9D\x95\x8B",
      "<|im_start|>", "<|im_end|>", "<|image_pad|>", "<|endoftext|>", "<|im_", "|>", "<think>", "</answer>",
      "\xCC\x81", "\xE2\x80\x8D", "\xEF\xB8\x8F"};
  std::mt19937 rng(seed);
  std::uniform_int_distribution<size_t> pick(0, atoms.size() - 1);
  std::uniform_int_distribution<int> len(1, 24);
  std::vector<std::string> texts;
  for (size_t i = 0; i < count; ++i) {
    std::string t;
    for (int k = len(rng); k > 0; --k) t += atoms[pick(rng)];
    texts.push_back(t);
  }
  return texts;
}

TEST(tokenizer, ParityWithHuggingFaceRandomStrings) {
  if (auto why = testing::ReferenceUnavailable()) GTEST_SKIP() << *why;
  const std::vector<std::string> texts = RandomTexts(3000, 20241126);
  const std::string corpus = std::string(R1R_BINARY_DIR) + "/tokenizer_fuzz_corpus.jsonl";
  {
    std::ofstream out(corpus, std::ios::trunc);
    for (const auto& t : texts) out << nlohmann::json{{"text", t}}.dump() << "\n";
  }
  auto tok = Tokenizer::FromFile(testing::QwenTokenizerPath());
  ASSERT_TRUE(tok.ok()) << tok.status();
  int rc = 0;
  const auto expected = testing::HfEncode("qwen", corpus, &rc);
  ASSERT_EQ(rc, 0);
  ASSERT_EQ(expected.size(), texts.size());
  int failures = 0;
  for (size_t i = 0; i < texts.size() && failures < 5; ++i) {
    absl::StatusOr<std::vector<int32_t>> ids = (*tok)->Encode(texts[i]);
    ASSERT_TRUE(ids.ok());
    if (*ids != expected[i]) {
      ++failures;
      ADD_FAILURE() << "text " << i << " " << nlohmann::json(texts[i]).dump();
    }
  }
}

TEST(tokenizer, ConcurrentEncodeIsConsistent) {
  if (auto why = testing::ReferenceUnavailable()) GTEST_SKIP() << *why;
  auto tok = Tokenizer::FromFile(testing::QwenTokenizerPath());
  ASSERT_TRUE(tok.ok());
  const std::vector<std::string> texts = RandomTexts(400, 7);
  std::vector<std::vector<int32_t>> serial;
  for (const auto& t : texts) serial.push_back(*(*tok)->Encode(t));
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      for (int rep = 0; rep < 3; ++rep)
        for (size_t i = w; i < texts.size(); i += 2) mismatches[w] += *(*tok)->Encode(texts[i]) != serial[i];
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches, (std::vector<int>{0, 0, 0, 0}));
  EXPECT_TRUE((*tok)->Encode("")->empty());
}

}  // namespace
}  // namespace r1r::tokenizer
