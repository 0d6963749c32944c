// Turns a preference question (image, question, two responses) into model input: the paper's
// Table 1 prompt inside the Qwen2.5-VL chat template, with the image's <|image_pad|> run expanded,
// plus the image's pixel values. Processed images are cached by path (datasets reuse them) in an LRU
// bounded in bytes.
#pragma once

#include <list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <absl/status/statusor.h>
#include <absl/synchronization/mutex.h>

#include "common/reward/chat.h"
#include "common/reward/prompt_template.h"
#include "common/tokenizer/tokenizer.h"
#include "common/vision/image.h"
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

// A sample's image file: `image_path` when absolute, else dataset_root/image_path; "" when none.
std::string ResolveImagePath(const std::string& dataset_root, const std::string& image_path);

class PromptEncoder {
 public:
  PromptEncoder(std::shared_ptr<const tokenizer::Tokenizer> tokenizer, vision::ImageProcessorOptions image_options,
                reward::ImagePlacement placement = reward::ImagePlacement::kBeforeText,
                reward::PromptStyle style = reward::PromptStyle::kR1Reward);

  absl::StatusOr<EncodedPrompt> Encode(const PromptInput& input);
  // Same, with an already decoded image (serve: inline image bytes); `input.image_path` is ignored and
  // nothing is cached.
  absl::StatusOr<EncodedPrompt> Encode(const PromptInput& input, const vision::RgbImage& image) const;
  // Same, with an image already processed by ProcessImage or LoadImage (one image, many prompts).
  absl::StatusOr<EncodedPrompt> Encode(const PromptInput& input, const EncodedPrompt& image) const;
  // Pixel values of a decoded image (not cached); ids.size() is its <|image_pad|> count.
  absl::StatusOr<EncodedPrompt> ProcessImage(const vision::RgbImage& image) const;
  // Pixel values of one image (cached), for re-scoring a prompt whose ids are already known.
  absl::StatusOr<EncodedPrompt> LoadImage(const std::string& path);
  // Checks the file's SHA-256 against `sha256_hex` (empty: unchecked; case-insensitive). A verified
  // (path, hash) pair is remembered, so a dataset image is hashed once. DATA_LOSS on a mismatch.
  absl::Status VerifyImage(const std::string& path, const std::string& sha256_hex);
  // Ids of a response text (no chat markup); the caller appends the end-of-turn token.
  absl::StatusOr<std::vector<int64_t>> EncodeText(const std::string& text) const;
  const tokenizer::Tokenizer& tokenizer() const { return *tokenizer_; }
  // The processed-image cache is an LRU bounded in bytes of pixel values (0: nothing is cached).
  void set_image_cache_limit(int64_t bytes);
  int64_t image_cache_bytes();     // held now
  int64_t image_cache_entries();
  int64_t image_cache_evictions();  // since construction
  static constexpr int64_t kDefaultImageCacheBytes = int64_t{1} << 30;

 private:
  // The chat-templated ids around `image` (ids.size() = its <|image_pad|> count), or text only when null.
  absl::StatusOr<EncodedPrompt> EncodeWithImage(const PromptInput& input, const EncodedPrompt* image) const;

  std::shared_ptr<const tokenizer::Tokenizer> tokenizer_;
  vision::ImageProcessorOptions image_options_;
  reward::ImagePlacement placement_;
  reward::PromptStyle style_;
  absl::Mutex mu_;
  struct CachedImage {
    EncodedPrompt image;
    int64_t bytes = 0;
    std::list<std::string>::iterator recency;  // position in lru_
  };
  std::map<std::string, CachedImage> image_cache_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> lru_ ABSL_GUARDED_BY(mu_);  // most recently used first
  int64_t cache_limit_ ABSL_GUARDED_BY(mu_) = kDefaultImageCacheBytes;
  int64_t cache_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t cache_evictions_ ABSL_GUARDED_BY(mu_) = 0;
  void EvictLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::map<std::string, std::string> verified_ ABSL_GUARDED_BY(mu_);  // path -> hash it matched
};

}  // namespace r1r::train
