#include "common/tokenizer/chat_template.h"

#include <gtest/gtest.h>

#include "common/tokenizer/bpe_trainer.h"

namespace r1r::tokenizer {
namespace {

TEST(tokenizer, ChatTemplateDefaultSystemAndImageFirst) {
  const std::vector<TemplateMessage> messages = {
      {"user", {ContentItem::Image(3), ContentItem::Text("Describe this image.")}}};
  EXPECT_EQ(RenderChatTemplate(messages, /*add_generation_prompt=*/true, /*expand_images=*/false),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
            "<|vision_start|><|image_pad|><|vision_end|>Describe this image.<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(RenderChatTemplate(messages, true, /*expand_images=*/true),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
            "<|vision_start|><|image_pad|><|image_pad|><|image_pad|><|vision_end|>Describe this image.<|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(tokenizer, ChatTemplateExplicitSystemTextFirstAndAssistantTurn) {
  const std::vector<TemplateMessage> messages = {
      TemplateMessage::FromText("system", "Judge two answers."),
      {"user", {ContentItem::Text("Which is better?"), ContentItem::Image(1)}},
      TemplateMessage::FromText("assistant", "<think>ok</think><answer>1</answer>")};
  EXPECT_EQ(RenderChatTemplate(messages, /*add_generation_prompt=*/false),
            "<|im_start|>system\nJudge two answers.<|im_end|>\n<|im_start|>user\nWhich is better?"
            "<|vision_start|><|image_pad|><|vision_end|><|im_end|>\n<|im_start|>assistant\n"
            "<think>ok</think><answer>1</answer><|im_end|>\n");
}

TEST(tokenizer, ImageTokenCount) {
  EXPECT_EQ(*ImageTokenCount(1, 34, 46), 391);  // 476x644 image: 34x46 patches -> 17x23 merged
  EXPECT_EQ(*ImageTokenCount(1, 4, 4), 4);
  EXPECT_EQ(*ImageTokenCount(2, 6, 8), 24);
  EXPECT_FALSE(ImageTokenCount(1, 5, 4).ok());
  EXPECT_FALSE(ImageTokenCount(0, 4, 4).ok());
}

TEST(tokenizer, EncodeChatSplicesImagePads) {
  const std::vector<std::string> corpus = {"system user assistant You are a helpful assistant. Describe this image."};
  BpeTrainerOptions options;
  options.vocab_size = 300;
  absl::StatusOr<std::string> json = TrainBpeTokenizerJson(corpus, options);
  ASSERT_TRUE(json.ok()) << json.status();
  auto tok = Tokenizer::FromJson(*json);
  ASSERT_TRUE(tok.ok()) << tok.status();
  const std::vector<TemplateMessage> messages = {
      {"user", {ContentItem::Text("Describe this image."), ContentItem::Image(5)}}};
  absl::StatusOr<std::vector<int32_t>> ids = EncodeChat(**tok, messages, true);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(*ids, *(*tok)->Encode(RenderChatTemplate(messages, true)));
  const int32_t pad = *(*tok)->TokenToId("<|image_pad|>");
  EXPECT_EQ(std::count(ids->begin(), ids->end(), pad), 5);
  const int32_t vision_start = *(*tok)->TokenToId("<|vision_start|>");
  const auto first_pad = std::find(ids->begin(), ids->end(), pad);
  EXPECT_EQ(*(first_pad - 1), vision_start);
}

}  // namespace
}  // namespace r1r::tokenizer
