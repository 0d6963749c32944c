#include "common/train/schedule.h"

#include <algorithm>
#include <cmath>

namespace r1r::train {

double LearningRateAt(const LrSchedule& s, int64_t step) {
  const int64_t total = std::max<int64_t>(1, s.total_steps);
  const int64_t warmup = static_cast<int64_t>(std::ceil(s.warmup_ratio * static_cast<double>(total)));
  if (step < warmup) return s.peak_lr * static_cast<double>(step + 1) / static_cast<double>(warmup);
  const double progress =
      std::min(1.0, static_cast<double>(step - warmup) / static_cast<double>(std::max<int64_t>(1, total - warmup)));
  const double floor = s.min_lr_ratio * s.peak_lr;
  return floor + (s.peak_lr - floor) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

}  // namespace r1r::train
