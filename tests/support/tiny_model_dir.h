// A servable tiny model directory built from scratch in seconds, for tests and benchmarks only (never
// linked into a service): the synthetic task's images and texts, a byte-level BPE trained on them, and a
// randomly initialised tiny Qwen2.5-VL (train::Policy::CreateTiny). A random model rarely writes a
// parsable answer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <absl/status/statusor.h>

#include "common/data/synthetic.h"
#include "common/model/config.h"

namespace r1r::test_support {

struct TinyModelDirOptions {
  int32_t vocab_size = 400;
  int64_t synthetic_items = 8;
  int image_size = 56;
  uint64_t seed = 7;          // the data, hence the tokenizer
  uint64_t weights_seed = 0;  // the random weights; 0 = seed (another one: same vocabulary, other weights)
  model::TinyConfigOptions tiny;  // its vocab_size is ignored: the model takes the tokenizer's
  // The image processor's pixel bounds. The defaults give at most 4 image tokens: cheap on a CPU.
  int64_t min_pixels = 28 * 28;
  int64_t max_pixels = 56 * 56;
};

struct TinyModelDir {
  std::string model_dir;                 // root/model
  std::string data_dir;                  // root/data: the synthetic dataset (images/*.png, *.jsonl)
  std::vector<std::string> image_paths;  // absolute paths of its PNGs
  std::vector<data::SyntheticItem> items;  // the dataset's items, in order
};

// Writes everything under `root` (created if needed).
absl::StatusOr<TinyModelDir> MakeTinyModelDir(const std::string& root, const TinyModelDirOptions& options = {});

// The first half of MakeTinyModelDir: the synthetic dataset in `data_dir` and the BPE trained on its texts
// at `model_dir`/tokenizer.json, without weights. This is what the orchestrator's data preparation leaves
// for a tiny job, whose learner then creates the weights. Fills every field of TinyModelDir.
absl::StatusOr<TinyModelDir> MakeTinyDataAndTokenizer(const std::string& data_dir, const std::string& model_dir,
                                                      const TinyModelDirOptions& options = {});

}  // namespace r1r::test_support
