// RateLimiter: one token bucket per key (e.g. per operator) on an injected clock. Each key may
// spend `burst` actions at once and then `per_second` actions per second; a call over the limit
// is refused with RESOURCE_EXHAUSTED saying when to retry, never queued (a flood must not hold
// server threads). Keys are expected to come from a bounded set (operators of the config); the
// table is still capped at `max_keys` (least recently refilled keys are dropped first) so
// arbitrary keys cannot grow it without bound.
// Thread-safety: safe for concurrent use.
#ifndef CYBERSYN_COMMON_RATE_LIMITER_H_
#define CYBERSYN_COMMON_RATE_LIMITER_H_

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"

namespace cybersyn {

struct RateLimit {
  double per_second = 5;  // sustained rate; <= 0 disables the limit
  double burst = 20;      // bucket size (at least 1)
};

class RateLimiter {
 public:
  // `clock` is not owned and must outlive the limiter.
  RateLimiter(RateLimit limit, Clock* clock, size_t max_keys = 10'000);

  // Spends one token of `key`'s bucket. RESOURCE_EXHAUSTED naming `what` and the retry delay
  // when the bucket is empty.
  absl::Status Acquire(absl::string_view key, absl::string_view what);

  const RateLimit& limit() const { return limit_; }

 private:
  struct Bucket {
    double tokens = 0;
    int64_t refilled_ms = 0;
  };
  const RateLimit limit_;
  Clock* const clock_;
  const size_t max_keys_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cybersyn

#endif  // CYBERSYN_COMMON_RATE_LIMITER_H_
