// A Qwen2.5-VL policy with what it needs to read preference prompts: the model, the tokenizer and
// the image processor of one model directory (config.json, tokenizer.json,
// preprocessor_config.json, *.safetensors). Used by the learner, the actors, serve and the judge.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <absl/status/statusor.h>

#include "common/model/config.h"
#include "common/model/generate.h"
#include "common/model/model.h"
#include "common/train/prompt_encoder.h"
#include "common/train/sequence_batch.h"

namespace r1r::train {

// "float32" | "bfloat16" and "cpu" | "cuda" | "cuda:N"; FAILED_PRECONDITION when CUDA is asked for
// but this LibTorch has none (or no device is visible).
absl::StatusOr<model::ModelOptions> ParseModelOptions(const std::string& dtype, const std::string& device);

// Writes the job's pixel limits (data.min_pixels / max_pixels) into <model_dir>/preprocessor_config.json
// (min_pixels/max_pixels, and size.shortest_edge/longest_edge where the file has them), so every
// process that loads the directory, and every model published from it, reads the spec's limits instead
// of the checkpoint's (Qwen2.5-VL ships 12.8 MP: up to 16k tokens per image). Creates the file with the
// Qwen2-VL defaults when there is none.
absl::Status ApplyPixelLimits(const std::string& model_dir, int64_t min_pixels, int64_t max_pixels);

class Policy {
 public:
  // Loads config, tokenizer, image processor options and (when `with_weights`) the weights.
  static absl::StatusOr<std::unique_ptr<Policy>> Load(const std::string& model_dir, const model::ModelOptions& options,
                                                      bool with_weights = true);
  // Writes config.json (special token ids taken from the directory's tokenizer.json),
  // preprocessor_config.json and randomly initialised weights into `model_dir`, then loads it.
  static absl::StatusOr<std::unique_ptr<Policy>> CreateTiny(const std::string& model_dir,
                                                            model::TinyConfigOptions tiny,
                                                            const vision::ImageProcessorOptions& image_options,
                                                            const model::ModelOptions& options, uint64_t seed);

  model::Qwen2_5_VL& model() { return *model_; }
  std::shared_ptr<model::Qwen2_5_VL> shared_model() { return model_; }
  PromptEncoder& encoder() { return *encoder_; }
  const std::string& model_dir() const { return model_dir_; }
  int64_t end_of_turn_id() const { return end_of_turn_id_; }  // <|im_end|>: stop token, kept in responses
  int64_t pad_id() const { return pad_id_; }                  // <|endoftext|>
  int64_t parameter_count();
  // Stops (or restarts) gradients to the vision tower and merger ("visual.*"): they keep their weights.
  void SetVisionTrainable(bool trainable);

  // Activation checkpointing (decoder layers and vision blocks) in ResponseLogProbs when grad mode is
  // on: the training forwards of SFT and RL keep only layer inputs and recompute layers in backward.
  void set_gradient_checkpointing(bool on) { gradient_checkpointing_ = on; }
  bool gradient_checkpointing() const { return gradient_checkpointing_; }

  // log p(response token | prefix) for every response position: [B, R] float32 (mask with
  // batch.response_mask). Differentiable when grad mode is on.
  absl::StatusOr<at::Tensor> ResponseLogProbs(const SequenceBatch& batch, double temperature = 1.0);

  // Samples one response per prompt (stop at <|im_end|>, which is kept). `options` (pad_token_id is
  // set here): continuous batching limits, on_result/cancelled callbacks (common/model/generate.h).
  absl::StatusOr<std::vector<model::GenerationResult>> Generate(const std::vector<const EncodedPrompt*>& prompts,
                                                                const std::vector<model::SamplingParams>& sampling);
  absl::StatusOr<std::vector<model::GenerationResult>> Generate(const std::vector<const EncodedPrompt*>& prompts,
                                                                const std::vector<model::SamplingParams>& sampling,
                                                                model::GenerateOptions options);
  // The request Generate makes of a prompt: vision placeholders suppressed, <|im_end|> a stop token
  // (for callers that drive a model::GenerationEngine themselves, e.g. r1r-serve).
  model::GenerationRequest MakeRequest(const EncodedPrompt& prompt, const model::SamplingParams& sampling) const;
  std::string Decode(const std::vector<int64_t>& ids, bool skip_special = true) const;

 private:
  Policy() = default;
  std::string model_dir_;
  std::shared_ptr<model::Qwen2_5_VL> model_;
  std::unique_ptr<PromptEncoder> encoder_;
  int64_t end_of_turn_id_ = -1;
  int64_t pad_id_ = 0;
  bool gradient_checkpointing_ = false;
};

}  // namespace r1r::train
