#include "common/train/policy.h"

#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include <absl/strings/str_cat.h>
#include <nlohmann/json.hpp>

#include "common/model/logprobs.h"
#include "common/model/weights.h"
#include "common/reward/prompt_layout.h"

namespace r1r::train {
namespace fs = std::filesystem;

namespace {

absl::StatusOr<int64_t> RequiredTokenId(const tokenizer::Tokenizer& tok, const std::string& token) {
  auto id = tok.TokenToId(token);
  if (!id) return absl::FailedPreconditionError(absl::StrCat("tokenizer has no ", token, " token"));
  return *id;
}

absl::Status WritePreprocessorConfig(const vision::ImageProcessorOptions& o, const std::string& path) {
  nlohmann::json j = {{"patch_size", o.patch_size}, {"temporal_patch_size", o.temporal_patch_size},
                      {"merge_size", o.merge_size}, {"min_pixels", o.min_pixels}, {"max_pixels", o.max_pixels},
                      {"image_mean", o.image_mean}, {"image_std", o.image_std},
                      {"image_processor_type", "Qwen2VLImageProcessor"}};
  std::ofstream out(path);
  out << j.dump(2);
  return out ? absl::OkStatus() : absl::InternalError(absl::StrCat("cannot write ", path));
}

}  // namespace

absl::Status ApplyPixelLimits(const std::string& model_dir, int64_t min_pixels, int64_t max_pixels) {
  if (min_pixels <= 0 || max_pixels < min_pixels) {
    return absl::InvalidArgumentError(absl::StrCat("pixel limits need 0 < min_pixels <= max_pixels, got ", min_pixels,
                                                   " and ", max_pixels));
  }
  const std::string path = model_dir + "/preprocessor_config.json";
  if (!fs::exists(path)) {
    vision::ImageProcessorOptions o;
    o.min_pixels = min_pixels;
    o.max_pixels = max_pixels;
    return WritePreprocessorConfig(o, path);
  }
  nlohmann::json j;
  {
    std::ifstream in(path);
    j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  }
  if (!j.is_object()) return absl::InvalidArgumentError(absl::StrCat(path, ": not a JSON object"));
  j["min_pixels"] = min_pixels;
  j["max_pixels"] = max_pixels;
  if (j.contains("size") && j["size"].is_object()) {
    j["size"]["shortest_edge"] = min_pixels;
    j["size"]["longest_edge"] = max_pixels;
  }
  // Written beside and renamed: a reader never sees half a file; a symlinked original is not touched.
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << j.dump(2);
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", tmp));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return absl::InternalError(absl::StrCat("rename ", tmp, ": ", ec.message()));
  return absl::OkStatus();
}

absl::StatusOr<model::ModelOptions> ParseModelOptions(const std::string& dtype, const std::string& device) {
  model::ModelOptions o;
  if (dtype == "float32") {
    o.dtype = torch::kFloat;
  } else if (dtype == "bfloat16") {
    o.dtype = torch::kBFloat16;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("dtype must be float32 or bfloat16, got '", dtype, "'"));
  }
  if (device == "cpu") return o;
  if (device.rfind("cuda", 0) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("device must be cpu, cuda or cuda:N, got '", device, "'"));
  }
  if (!torch::cuda::is_available()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "device '", device, "' asked for, but this build of LibTorch sees no CUDA device; use device: cpu"));
  }
  try {
    o.device = at::Device(device);
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(absl::StrCat("device '", device, "': ", e.what_without_backtrace()));
  }
  return o;
}

int64_t Policy::parameter_count() {
  int64_t n = 0;
  for (const auto& p : model_->parameters()) n += p.numel();
  return n;
}

absl::StatusOr<std::unique_ptr<Policy>> Policy::Load(const std::string& model_dir, const model::ModelOptions& options,
                                                     bool with_weights) {
  std::unique_ptr<Policy> p(new Policy());
  p->model_dir_ = model_dir;
  auto tok = tokenizer::Tokenizer::FromFile(model_dir + "/tokenizer.json");
  if (!tok.ok()) return tok.status();
  std::shared_ptr<const tokenizer::Tokenizer> shared_tok(std::move(*tok));
  vision::ImageProcessorOptions image_options;
  if (fs::exists(model_dir + "/preprocessor_config.json")) {
    auto o = vision::LoadImageProcessorOptions(model_dir + "/preprocessor_config.json");
    if (!o.ok()) return o.status();
    image_options = *o;
  }
  auto eot = RequiredTokenId(*shared_tok, "<|im_end|>");
  if (!eot.ok()) return eot.status();
  p->end_of_turn_id_ = *eot;
  p->pad_id_ = shared_tok->TokenToId("<|endoftext|>").value_or(0);
  auto layout = reward::ReadPromptLayout(model_dir);
  if (!layout.ok()) return layout.status();
  p->encoder_ = std::make_unique<PromptEncoder>(shared_tok, image_options, layout->placement, layout->style);
  if (with_weights) {
    auto m = model::LoadPretrained(model_dir, options);
    if (!m.ok()) return m.status();
    p->model_ = *m;
  } else {
    auto config = model::LoadModelConfig(model_dir + "/config.json");
    if (!config.ok()) return config.status();
    // Weights follow over the wire (actors): skip the random initialisation.
    auto m = model::Qwen2_5_VL::CreateUninitialized(*config, options);
    if (!m.ok()) return m.status();
    p->model_ = *m;
  }
  return p;
}

absl::StatusOr<std::unique_ptr<Policy>> Policy::CreateTiny(const std::string& model_dir, model::TinyConfigOptions tiny,
                                                           const vision::ImageProcessorOptions& image_options,
                                                           const model::ModelOptions& options, uint64_t seed) {
  auto tok = tokenizer::Tokenizer::FromFile(model_dir + "/tokenizer.json");
  if (!tok.ok()) return tok.status();
  tiny.vocab_size = (*tok)->vocab_size();
  model::ModelConfig config = model::MakeTinyConfig(tiny);
  struct Special {
    const char* token;
    int64_t* field;
  };
  for (const Special& s : {Special{"<|image_pad|>", &config.image_token_id}, Special{"<|video_pad|>", &config.video_token_id},
                           Special{"<|vision_start|>", &config.vision_start_token_id},
                           Special{"<|vision_end|>", &config.vision_end_token_id}}) {
    auto id = RequiredTokenId(**tok, s.token);
    if (!id.ok()) return id.status();
    *s.field = *id;
  }
  auto eot = RequiredTokenId(**tok, "<|im_end|>");
  if (!eot.ok()) return eot.status();
  config.eos_token_ids = {*eot};
  if (absl::Status s = model::WriteModelConfig(config, model_dir + "/config.json"); !s.ok()) return s;
  if (absl::Status s = WritePreprocessorConfig(image_options, model_dir + "/preprocessor_config.json"); !s.ok()) return s;
  auto m = model::Qwen2_5_VL::Create(config, options, seed);
  if (!m.ok()) return m.status();
  if (absl::Status s = model::SaveCheckpoint(**m, model_dir); !s.ok()) return s;
  return Load(model_dir, options);
}

void Policy::SetVisionTrainable(bool trainable) {
  for (auto& p : model_->named_parameters()) {
    if (p.key().rfind("visual.", 0) == 0) p.value().set_requires_grad(trainable);
  }
}

absl::StatusOr<at::Tensor> Policy::ResponseLogProbs(const SequenceBatch& batch, double temperature) {
  model::TokenLogProbsOptions o;
  o.first_target_position = batch.prompt_width;
  o.temperature = temperature;
  absl::StatusOr<model::TokenLogProbs> lp;
  if (gradient_checkpointing_) {
    model::ForwardInput input = batch.input;
    input.checkpoint_layers = true;
    lp = model::ComputeTokenLogProbs(*model_, input, o);
  } else {
    lp = model::ComputeTokenLogProbs(*model_, batch.input, o);
  }
  if (!lp.ok()) return lp.status();
  return lp->logprobs;
}

model::GenerationRequest Policy::MakeRequest(const EncodedPrompt& prompt, const model::SamplingParams& sampling) const {
  model::GenerationRequest r;
  r.prompt_ids = prompt.ids;
  r.pixel_values = prompt.pixel_values;
  r.image_grid_thw = prompt.image_grid_thw;
  r.sampling = sampling;
  // A sampled vision placeholder would be taken for an image slot when the response is re-scored.
  const model::ModelConfig& c = model_->config();
  for (int64_t id : {c.image_token_id, c.video_token_id, c.vision_start_token_id, c.vision_end_token_id}) {
    r.sampling.suppress_token_ids.push_back(id);
  }
  if (std::find(r.sampling.stop_token_ids.begin(), r.sampling.stop_token_ids.end(), end_of_turn_id_) ==
      r.sampling.stop_token_ids.end()) {
    r.sampling.stop_token_ids.push_back(end_of_turn_id_);
  }
  return r;
}

absl::StatusOr<std::vector<model::GenerationResult>> Policy::Generate(const std::vector<const EncodedPrompt*>& prompts,
                                                                      const std::vector<model::SamplingParams>& sampling) {
  return Generate(prompts, sampling, model::GenerateOptions{});
}

absl::StatusOr<std::vector<model::GenerationResult>> Policy::Generate(const std::vector<const EncodedPrompt*>& prompts,
                                                                      const std::vector<model::SamplingParams>& sampling,
                                                                      model::GenerateOptions options) {
  if (prompts.size() != sampling.size()) {
    return absl::InvalidArgumentError("Generate: one sampling setting per prompt");
  }
  std::vector<model::GenerationRequest> requests;
  requests.reserve(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) requests.push_back(MakeRequest(*prompts[i], sampling[i]));
  options.pad_token_id = pad_id_;
  torch::NoGradGuard no_grad;
  return model::Generate(*model_, requests, options);
}

std::string Policy::Decode(const std::vector<int64_t>& ids, bool skip_special) const {
  std::vector<int32_t> ids32(ids.begin(), ids.end());
  auto text = encoder_->tokenizer().Decode(ids32, skip_special);
  return text.ok() ? *text : std::string();
}

}  // namespace r1r::train
