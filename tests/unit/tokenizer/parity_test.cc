// Parity with Hugging Face tokenizers on the real Qwen vocabulary, and on vocabularies written by
// our trainer. The reference runs through node (tests/parity); without it these tests skip.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/tokenizer/bpe_trainer.h"
#include "common/tokenizer/chat_template.h"
#include "common/tokenizer/tokenizer.h"
#include "tests/unit/tokenizer/hf_reference.h"

namespace r1r::tokenizer {
namespace {

using testing::CorpusPath;
using testing::HfEncode;
using testing::QwenTokenizerPath;
using testing::ReadCorpus;
using testing::ReferenceUnavailable;

#define SKIP_WITHOUT_REFERENCE()                                        \
  if (auto why = ReferenceUnavailable()) GTEST_SKIP() << *why

const Tokenizer& Qwen() {
  static const Tokenizer* tok = [] {
    auto t = Tokenizer::FromFile(QwenTokenizerPath());
    if (!t.ok()) {
      ADD_FAILURE() << t.status();
      return static_cast<Tokenizer*>(nullptr);
    }
    return t->release();
  }();
  return *tok;
}

TEST(tokenizer, ParityWithHuggingFace) {
  SKIP_WITHOUT_REFERENCE();
  const std::vector<std::string> texts = ReadCorpus(CorpusPath());
  ASSERT_GE(texts.size(), 40u);
  int rc = 0;
  const auto expected = HfEncode("qwen", CorpusPath(), &rc);
  ASSERT_EQ(rc, 0);
  ASSERT_EQ(expected.size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    absl::StatusOr<std::vector<int32_t>> ids = Qwen().Encode(texts[i]);
    ASSERT_TRUE(ids.ok()) << ids.status();
    EXPECT_EQ(*ids, expected[i]) << "corpus line " << i + 1 << ": " << texts[i];
  }
}

TEST(tokenizer, QwenKnownIds) {
  SKIP_WITHOUT_REFERENCE();
  EXPECT_EQ(Qwen().vocab_size(), 151669);  // Qwen3 file: Qwen2.5's 151665 ids + 4 more added tokens
  EXPECT_EQ(*Qwen().Encode("You are a helpful assistant."), (std::vector<int32_t>{2610, 525, 264, 10950, 17847, 13}));
  EXPECT_EQ(*Qwen().TokenToId("<|image_pad|>"), 151655);
  EXPECT_EQ(*Qwen().TokenToId("<|vision_start|>"), 151652);
  // transformers' Qwen2.5-VL integration test: input_ids[:17] of [image, "What kind of dog is this?"].
  const std::vector<TemplateMessage> messages = {
      {"user", {ContentItem::Image(2), ContentItem::Text("What kind of dog is this?")}}};
  absl::StatusOr<std::vector<int32_t>> ids = EncodeChat(Qwen(), messages, /*add_generation_prompt=*/true);
  ASSERT_TRUE(ids.ok()) << ids.status();
  const std::vector<int32_t> head(ids->begin(), ids->begin() + 17);
  EXPECT_EQ(head, (std::vector<int32_t>{151644, 8948, 198, 2610, 525, 264, 10950, 17847, 13, 151645, 198, 151644, 872,
                                        198, 151652, 151655, 151655}));
  EXPECT_EQ(*ids, *Qwen().Encode(RenderChatTemplate(messages, true)));
}

TEST(tokenizer, QwenDecodeRoundTrip) {
  SKIP_WITHOUT_REFERENCE();
  for (const std::string& text : ReadCorpus(CorpusPath())) {
    absl::StatusOr<std::vector<int32_t>> ids = Qwen().Encode(text);
    ASSERT_TRUE(ids.ok());
    absl::StatusOr<std::string> back = Qwen().Decode(*ids);
    ASSERT_TRUE(back.ok());
    // Encoding normalises to NFC, so compare against the NFC text.
    EXPECT_EQ(*back, *Qwen().Decode(*Qwen().Encode(*back)));
    if (text.find("\xCC\x81") == std::string::npos && text.find("\xCC\x8A") == std::string::npos &&
        text.find("\xCC\x83") == std::string::npos) {
      EXPECT_EQ(*back, text);
    }
  }
  EXPECT_EQ(*Qwen().Decode(*Qwen().Encode("<|im_start|>hi<|im_end|>"), /*skip_special_tokens=*/true), "hi");
}

TEST(tokenizer, TrainedVocabularyLoadsInHuggingFace) {
  SKIP_WITHOUT_REFERENCE();
  std::vector<std::string> corpus = ReadCorpus(CorpusPath());
  for (int i = 0; i < 20; ++i) corpus.push_back("<think>Response 1 is better.</think><answer>1</answer> the the the");
  BpeTrainerOptions options;
  options.vocab_size = 600;
  options.min_frequency = 1;  // the corpus is small: fill the vocabulary
  const std::string path = std::string(R1R_BINARY_DIR) + "/tokenizer_trained_test.json";
  ASSERT_TRUE(TrainBpeTokenizerFile(corpus, options, path).ok());
  auto ours = Tokenizer::FromFile(path);
  ASSERT_TRUE(ours.ok()) << ours.status();
  EXPECT_EQ((*ours)->vocab_size(), 600);
  EXPECT_EQ(*(*ours)->TokenToId("<|endoftext|>"), 593);
  EXPECT_EQ(*(*ours)->TokenToId("<|video_pad|>"), 599);
  int rc = 0;
  const auto expected = HfEncode(path, CorpusPath(), &rc);
  ASSERT_EQ(rc, 0);
  const std::vector<std::string> texts = ReadCorpus(CorpusPath());
  ASSERT_EQ(expected.size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    EXPECT_EQ(*(*ours)->Encode(texts[i]), expected[i]) << "corpus line " << i + 1;
  }
}

}  // namespace
}  // namespace r1r::tokenizer
