// A tiny, self-contained world for training tests: a synthetic dataset, a BPE trained on its texts
// and a randomly initialised tiny Qwen2.5-VL in <tmp>/model. Built once per test binary.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/data/synthetic.h"
#include "common/train/policy.h"
#include "common/train/trainer.h"

namespace r1r::train::testing {

struct TinyWorld {
  std::string root;       // temp directory
  std::string model_dir;  // root/model
  std::string data_dir;   // root/data (images/<id>.png)
  std::vector<data::SyntheticItem> items;
};

// The shared world (created on first use; aborts the test binary if it cannot be built).
const TinyWorld& World();

// A fresh policy with the world's initial weights.
std::unique_ptr<Policy> LoadPolicy();

// SFT items for samples [first, first + n): prompt with image, teacher trace + <|im_end|>.
std::vector<SftItem> MakeSftItems(Policy& policy, int first, int n);

}  // namespace r1r::train::testing
