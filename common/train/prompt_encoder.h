// Turns a preference question (image, question, two responses) into model input: the paper's
// Table 1 prompt inside the Qwen2.5-VL chat template, with the image's <|image_pad|> run expanded,
// plus the image's pixel values. Processed images are cached by path (datasets reuse them).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <absl/status/statusor.h>
#include <absl/synchronization/mutex.h>

#include "common/reward/chat.h"
#include "common/tokenizer/tokenizer.h"
#include "common/vision/image_processor.h"

namespace r1r::train {

struct PromptInput {
  std::string question;
  std::string response1;
  std::string response2;
  std::string image_path;  // empty: text only
};

struct EncodedPrompt {
  std::vector<int64_t> ids;
  at::Tensor pixel_values;    // [patches, 1176] or undefined
  at::Tensor image_grid_thw;  // [1, 3] or undefined
};

class PromptEncoder {
 public:
  PromptEncoder(std::shared_ptr<const tokenizer::Tokenizer> tokenizer, vision::ImageProcessorOptions image_options,
                reward::ImagePlacement placement = reward::ImagePlacement::kBeforeText);

  absl::StatusOr<EncodedPrompt> Encode(const PromptInput& input);
  // Pixel values of one image (cached), for re-scoring a prompt whose ids are already known.
  absl::StatusOr<EncodedPrompt> LoadImage(const std::string& path);
  // Ids of a response text (no chat markup); the caller appends the end-of-turn token.
  absl::StatusOr<std::vector<int64_t>> EncodeText(const std::string& text) const;
  const tokenizer::Tokenizer& tokenizer() const { return *tokenizer_; }

 private:
  std::shared_ptr<const tokenizer::Tokenizer> tokenizer_;
  vision::ImageProcessorOptions image_options_;
  reward::ImagePlacement placement_;
  absl::Mutex mu_;
  std::map<std::string, EncodedPrompt> image_cache_ ABSL_GUARDED_BY(mu_);
};

}  // namespace r1r::train
