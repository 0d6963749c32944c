// Learning-rate schedule: linear warmup, then cosine decay to a floor (OpenRLHF's
// cosine_with_min_lr: warmup 3%, floor 0.1·lr in the paper's script).
#pragma once

#include <cstdint>

namespace r1r::train {

struct LrSchedule {
  double peak_lr = 1e-6;
  double warmup_ratio = 0.03;
  double min_lr_ratio = 0.1;
  int64_t total_steps = 1;
};

// The learning rate of optimizer step `step` (0-based).
double LearningRateAt(const LrSchedule& schedule, int64_t step);

}  // namespace r1r::train
