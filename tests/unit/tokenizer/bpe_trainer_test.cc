#include "common/tokenizer/bpe_trainer.h"

#include <gtest/gtest.h>

#include "common/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"

namespace r1r::tokenizer {
namespace {

TEST(tokenizer, TrainerLearnsFrequentPairsFirst) {
  // Pieces: "low"x5, " low"x... ; the most frequent pair is (l, o).
  const std::vector<std::string> corpus = {"low low low lower lowest", "low newer wider"};
  BpeTrainerOptions options;
  options.vocab_size = 256 + 3 + 7;  // three merges
  absl::StatusOr<std::string> json = TrainBpeTokenizerJson(corpus, options);
  ASSERT_TRUE(json.ok()) << json.status();
  const nlohmann::json j = nlohmann::json::parse(*json);
  // Pieces: low, Ġlow x3, Ġlower, Ġlowest, Ġnewer, Ġwider. Pair counts: (l,o)=6 (o,w)=6 (Ġ,l)=5, ...
  // Ties go to the smaller (left, right) bytes: "l","o" < "o","w".
  ASSERT_EQ(j["model"]["merges"].size(), 3u);
  EXPECT_EQ(j["model"]["merges"][0], "l o");
  EXPECT_EQ(j["model"]["merges"][1], "lo w");
  EXPECT_EQ(j["model"]["merges"][2], "Ġ low");
  EXPECT_EQ(j["added_tokens"].size(), 7u);
  EXPECT_EQ(j["added_tokens"][2]["content"], "<|im_end|>");
  EXPECT_EQ(j["added_tokens"][2]["id"], 256 + 3 + 2);
  auto tok = Tokenizer::FromJson(*json);
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ(*(*tok)->Encode(" low"), (std::vector<int32_t>{258}));
  EXPECT_EQ(*(*tok)->Encode("<|im_end|>"), (std::vector<int32_t>{261}));
  // <think> stays plain text (documented choice).
  EXPECT_GT((*tok)->Encode("<think>")->size(), 1u);
  EXPECT_EQ(*(*tok)->Decode(*(*tok)->Encode("lowest <think>中文</think> 😀")), "lowest <think>中文</think> 😀");
}

TEST(tokenizer, TrainerStopsAtMinFrequencyAndValidates) {
  BpeTrainerOptions options;
  options.vocab_size = 1000;
  options.min_frequency = 2;
  absl::StatusOr<std::string> json = TrainBpeTokenizerJson({"abcd"}, options);
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(nlohmann::json::parse(*json)["model"]["merges"].size(), 0u);  // every pair occurs once
  options.vocab_size = 100;
  EXPECT_EQ(TrainBpeTokenizerJson({"abcd"}, options).status().code(), absl::StatusCode::kInvalidArgument);
  options.vocab_size = 1000;
  EXPECT_FALSE(TrainBpeTokenizerJson({"bad \xFF"}, options).ok());
}

}  // namespace
}  // namespace r1r::tokenizer
