#include "common/train/prompt_encoder.h"

#include <algorithm>

#include <torch/torch.h>

#include <absl/strings/ascii.h>
#include <absl/strings/str_cat.h>

#include "common/reward/prompt_template.h"
#include "common/train/sha256.h"
#include "common/tokenizer/chat_template.h"
#include "common/vision/image_tensors.h"

namespace r1r::train {

std::string ResolveImagePath(const std::string& dataset_root, const std::string& image_path) {
  if (image_path.empty()) return "";
  if (image_path.front() == '/' || dataset_root.empty()) return image_path;
  return dataset_root.back() == '/' ? dataset_root + image_path : dataset_root + "/" + image_path;
}

PromptEncoder::PromptEncoder(std::shared_ptr<const tokenizer::Tokenizer> tokenizer,
                             vision::ImageProcessorOptions image_options, reward::ImagePlacement placement,
                             reward::PromptStyle style)
    : tokenizer_(std::move(tokenizer)), image_options_(image_options), placement_(placement), style_(style) {}

absl::StatusOr<EncodedPrompt> PromptEncoder::LoadImage(const std::string& path) {
  {
    absl::MutexLock lock(&mu_);
    if (auto it = image_cache_.find(path); it != image_cache_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second.recency);
      return it->second.image;
    }
  }
  std::vector<std::string> paths = {path};
  auto batch = vision::LoadAndProcessImages(paths, image_options_);
  if (!batch.ok()) return batch.status();
  EncodedPrompt image;
  image.pixel_values = batch->pixel_values;
  image.image_grid_thw = batch->image_grid_thw;
  image.ids.assign(static_cast<size_t>(batch->image_tokens.at(0)), 0);  // only the count matters here
  absl::MutexLock lock(&mu_);
  const int64_t bytes = static_cast<int64_t>(image.pixel_values.nbytes());
  if (bytes <= cache_limit_ && image_cache_.find(path) == image_cache_.end()) {
    lru_.push_front(path);
    image_cache_.emplace(path, CachedImage{image, bytes, lru_.begin()});
    cache_bytes_ += bytes;
    EvictLocked();
  }
  return image;
}

void PromptEncoder::EvictLocked() {
  while (cache_bytes_ > cache_limit_ && !lru_.empty()) {
    auto it = image_cache_.find(lru_.back());
    cache_bytes_ -= it->second.bytes;
    image_cache_.erase(it);
    lru_.pop_back();
    ++cache_evictions_;
  }
}

void PromptEncoder::set_image_cache_limit(int64_t bytes) {
  absl::MutexLock lock(&mu_);
  cache_limit_ = std::max<int64_t>(0, bytes);
  EvictLocked();
}

int64_t PromptEncoder::image_cache_bytes() {
  absl::MutexLock lock(&mu_);
  return cache_bytes_;
}

int64_t PromptEncoder::image_cache_entries() {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(image_cache_.size());
}

int64_t PromptEncoder::image_cache_evictions() {
  absl::MutexLock lock(&mu_);
  return cache_evictions_;
}

absl::Status PromptEncoder::VerifyImage(const std::string& path, const std::string& sha256_hex) {
  if (sha256_hex.empty()) return absl::OkStatus();
  const std::string want = absl::AsciiStrToLower(sha256_hex);
  {
    absl::MutexLock lock(&mu_);
    if (auto it = verified_.find(path); it != verified_.end() && it->second == want) return absl::OkStatus();
  }
  auto got = Sha256HexOfFile(path);
  if (!got.ok()) return got.status();
  if (*got != want) {
    return absl::DataLossError(absl::StrCat(path, " has sha256 ", *got, ", the sample says ", want));
  }
  absl::MutexLock lock(&mu_);
  verified_[path] = want;
  return absl::OkStatus();
}

absl::StatusOr<EncodedPrompt> PromptEncoder::Encode(const PromptInput& input) {
  if (input.image_path.empty()) return EncodeWithImage(input, nullptr);
  auto image = LoadImage(input.image_path);
  if (!image.ok()) return image.status();
  return EncodeWithImage(input, &*image);
}

absl::StatusOr<EncodedPrompt> PromptEncoder::ProcessImage(const vision::RgbImage& rgb) const {
  auto batch = vision::ProcessImages(absl::MakeConstSpan(&rgb, 1), image_options_);
  if (!batch.ok()) return batch.status();
  EncodedPrompt image;
  image.pixel_values = batch->pixel_values;
  image.image_grid_thw = batch->image_grid_thw;
  image.ids.assign(static_cast<size_t>(batch->image_tokens.at(0)), 0);  // only the count matters here
  return image;
}

absl::StatusOr<EncodedPrompt> PromptEncoder::Encode(const PromptInput& input, const vision::RgbImage& rgb) const {
  auto image = ProcessImage(rgb);
  if (!image.ok()) return image.status();
  return EncodeWithImage(input, &*image);
}

absl::StatusOr<EncodedPrompt> PromptEncoder::Encode(const PromptInput& input, const EncodedPrompt& image) const {
  return EncodeWithImage(input, &image);
}

absl::StatusOr<EncodedPrompt> PromptEncoder::EncodeWithImage(const PromptInput& input, const EncodedPrompt* image) const {
  EncodedPrompt out;
  tokenizer::TemplateMessage user;
  user.role = "user";
  const std::string text = reward::RenderComparisonPrompt(input.question, input.response1, input.response2, style_);
  if (image == nullptr) {
    user.content.push_back(tokenizer::ContentItem::Text(text));
  } else {
    out.pixel_values = image->pixel_values;
    out.image_grid_thw = image->image_grid_thw;
    const auto image_item = tokenizer::ContentItem::Image(static_cast<int64_t>(image->ids.size()));
    if (placement_ == reward::ImagePlacement::kBeforeText) {
      user.content = {image_item, tokenizer::ContentItem::Text(text)};
    } else {
      user.content = {tokenizer::ContentItem::Text(text), image_item};
    }
  }
  auto ids = tokenizer::EncodeChat(*tokenizer_, {user}, /*add_generation_prompt=*/true);
  if (!ids.ok()) return ids.status();
  out.ids.assign(ids->begin(), ids->end());
  return out;
}

absl::StatusOr<std::vector<int64_t>> PromptEncoder::EncodeText(const std::string& text) const {
  auto ids = tokenizer_->Encode(text);
  if (!ids.ok()) return ids.status();
  return std::vector<int64_t>(ids->begin(), ids->end());
}

}  // namespace r1r::train
