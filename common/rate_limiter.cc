#include "common/rate_limiter.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_format.h"

namespace cybersyn {

RateLimiter::RateLimiter(RateLimit limit, Clock* clock, size_t max_keys)
    : limit_{limit.per_second, std::max(1.0, limit.burst)},
      clock_(clock),
      max_keys_(std::max<size_t>(1, max_keys)) {}

absl::Status RateLimiter::Acquire(absl::string_view key, absl::string_view what) {
  if (limit_.per_second <= 0) return absl::OkStatus();
  const int64_t now = clock_->NowMillis();
  absl::MutexLock l(&mu_);
  auto it = buckets_.find(key);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_keys_) {
      // Drop the stalest bucket: a full bucket and a forgotten one behave the same.
      auto oldest = std::min_element(
          buckets_.begin(), buckets_.end(),
          [](const auto& a, const auto& b) { return a.second.refilled_ms < b.second.refilled_ms; });
      buckets_.erase(oldest);
    }
    it = buckets_.emplace(std::string(key), Bucket{limit_.burst, now}).first;
  }
  Bucket& b = it->second;
  if (now > b.refilled_ms) {
    b.tokens = std::min(limit_.burst, b.tokens + (now - b.refilled_ms) * limit_.per_second / 1000);
    b.refilled_ms = now;
  }
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return absl::OkStatus();
  }
  const int64_t retry_ms =
      static_cast<int64_t>(std::ceil((1 - b.tokens) * 1000 / limit_.per_second));
  return absl::ResourceExhaustedError(
      absl::StrFormat("%s: rate limit of %g per second (burst %g) exceeded; retry in %d ms",
                      std::string(what), limit_.per_second, limit_.burst, retry_ms));
}

}  // namespace cybersyn
