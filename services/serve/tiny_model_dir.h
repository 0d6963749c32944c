// A servable tiny model directory built from scratch in seconds (tests, benchmarks, smoke runs):
// the synthetic task's images and texts, a byte-level BPE trained on them, and a randomly initialised
// tiny Qwen2.5-VL (train::Policy::CreateTiny). A random model rarely writes a parsable answer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <absl/status/statusor.h>

namespace r1r::serve {

struct TinyModelDirOptions {
  int32_t vocab_size = 400;
  int64_t synthetic_items = 8;
  int image_size = 56;
  uint64_t seed = 7;          // the data, hence the tokenizer
  uint64_t weights_seed = 0;  // the random weights; 0 = seed (another one: same vocabulary, other weights)
};

struct TinyModelDir {
  std::string model_dir;                 // root/model
  std::string data_dir;                  // root/data: the synthetic dataset (images/*.png, *.jsonl)
  std::vector<std::string> image_paths;  // absolute paths of its PNGs
};

// Writes everything under `root` (created if needed).
absl::StatusOr<TinyModelDir> MakeTinyModelDir(const std::string& root, const TinyModelDirOptions& options = {});

}  // namespace r1r::serve
