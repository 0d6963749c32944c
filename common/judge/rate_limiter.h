// A token bucket shared by the threads that call an external endpoint (requests per second).
#pragma once

#include <absl/synchronization/mutex.h>
#include <absl/time/time.h>

namespace r1r::judge {

class RateLimiter {
 public:
  // qps <= 0 means unlimited. Bursts of up to max(1, qps) requests pass at once.
  explicit RateLimiter(double qps);
  // Blocks until a request may be sent.
  void Acquire();

 private:
  const double qps_;
  absl::Mutex mu_;
  double tokens_ ABSL_GUARDED_BY(mu_);
  absl::Time last_ ABSL_GUARDED_BY(mu_);
};

}  // namespace r1r::judge
