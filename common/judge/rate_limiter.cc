#include "common/judge/rate_limiter.h"

#include <algorithm>

namespace r1r::judge {

RateLimiter::RateLimiter(double qps) : qps_(qps), tokens_(std::max(1.0, qps)), last_(absl::Now()) {}

void RateLimiter::Acquire() {
  if (qps_ <= 0) return;
  const double burst = std::max(1.0, qps_);
  while (true) {
    absl::Duration wait;
    {
      absl::MutexLock lock(&mu_);
      const absl::Time now = absl::Now();
      tokens_ = std::min(burst, tokens_ + absl::ToDoubleSeconds(now - last_) * qps_);
      last_ = now;
      if (tokens_ >= 1) {
        tokens_ -= 1;
        return;
      }
      wait = absl::Seconds((1 - tokens_) / qps_);
    }
    absl::SleepFor(wait);
  }
}

}  // namespace r1r::judge
