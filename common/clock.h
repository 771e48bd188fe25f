// Clock: the one source of time for windows, deadlines and escalation, so tests can drive time
// (after Abseil's clock_interface.h and Seastar's manual_clock).
// Thread-safety: all implementations are safe to call from any thread.
#ifndef CYBERSYN_COMMON_CLOCK_H_
#define CYBERSYN_COMMON_CLOCK_H_

#include <atomic>
#include <cstdint>

#include "absl/time/time.h"

namespace cybersyn {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
  int64_t NowMillis() const { return absl::ToUnixMillis(Now()); }

  // The process-wide real clock. Never deleted.
  static Clock* Real();
};

// A clock that moves only when told to. Starts at the given time.
class ManualClock : public Clock {
 public:
  explicit ManualClock(absl::Time start = absl::FromUnixMillis(1'700'000'000'000))
      : now_ms_(absl::ToUnixMillis(start)) {}
  absl::Time Now() const override {
    return absl::FromUnixMillis(now_ms_.load(std::memory_order_acquire));
  }
  void Advance(absl::Duration d) {
    now_ms_.fetch_add(absl::ToInt64Milliseconds(d), std::memory_order_acq_rel);
  }
  void Set(absl::Time t) { now_ms_.store(absl::ToUnixMillis(t), std::memory_order_release); }

 private:
  std::atomic<int64_t> now_ms_;
};

}  // namespace cybersyn

#endif  // CYBERSYN_COMMON_CLOCK_H_
