// The referee as a Qwen2.5-VL running in this process (LibTorch): the same text-only prompt the
// OpenAI backend sends, sampled at a low temperature, up to three replies per response.
#pragma once

#include <memory>
#include <string>

#include <absl/status/statusor.h>

#include "common/judge/referee_backend.h"

namespace r1r::judge {

struct ModelBackendOptions {
  std::string model_dir;       // config.json, tokenizer.json, safetensors (e.g. Qwen2.5-VL-7B-Instruct)
  std::string device = "cpu";  // cpu | cuda
  std::string dtype = "float32";
  double temperature = 0.1;
  int max_tokens = 64;         // the referee answers "1" or "0"
  int batch_size = 8;
};

absl::StatusOr<std::unique_ptr<RefereeBackend>> MakeModelBackend(const ModelBackendOptions& options);

}  // namespace r1r::judge
