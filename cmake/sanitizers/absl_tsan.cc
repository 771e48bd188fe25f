// TSan build only (CYBERSYN_SANITIZE=thread): makes Debian's absl::Mutex, CondVar and
// Notification visible to ThreadSanitizer.
//
// Abseil annotates its Mutex for TSan inside mutex.cc, and Debian's libabsl is not built with
// -fsanitize=thread, so TSan never sees our absl::Mutex lock or unlock: every access guarded by
// one looked like a race. The link wraps (-Wl,--wrap, list in CybersynHelpers.cmake) each call
// our code makes into the library and annotates it here the way mutex.cc would: the mutex is
// released before Unlock and acquired after Lock, and while the library runs (e.g. evaluating an
// Await condition) TSan ignores the accesses, as in abseil's own TSan build. Calls made inside the
// library (gRPC's own mutexes) stay invisible; they are not our code.
#include <sanitizer/tsan_interface.h>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace {

// Abseil's lock-order graph (GraphCycles, on by default in Debian's build) is guarded by its
// own uninstrumented SpinLock, so TSan reported races inside it on every contended lock; TSan's
// own lock-order check (detect_deadlocks) covers what it would find.
[[maybe_unused]] const bool kNoAbslDeadlockGraph = [] {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return true;
}();

using absl::Condition;
using absl::CondVar;
using absl::Duration;
using absl::Mutex;
using absl::Notification;
using absl::Time;

constexpr unsigned kRead = __tsan_mutex_read_lock;
constexpr unsigned kTry = __tsan_mutex_try_lock;

void PreLock(Mutex* mu, unsigned flags) { __tsan_mutex_pre_lock(mu, flags); }
void PostLock(Mutex* mu, unsigned flags, bool locked) {
  __tsan_mutex_post_lock(mu, flags | (locked ? 0 : __tsan_mutex_try_lock_failed), 0);
}
void PreUnlock(Mutex* mu, unsigned flags) { __tsan_mutex_pre_unlock(mu, flags); }
void PostUnlock(Mutex* mu, unsigned flags) { __tsan_mutex_post_unlock(mu, flags); }
// Await and CondVar::Wait release the mutex while they wait and hold it again on return.
void Released(Mutex* mu) {
  PreUnlock(mu, 0);
  PostUnlock(mu, 0);
  PreLock(mu, 0);
}

}  // namespace

// Names are the Itanium manglings of the absl::debian3 (Debian's inline namespace) members.
#define CYBERSYN_REAL(ret, sym, ...) \
  ret __real_##sym(__VA_ARGS__);     \
  ret __wrap_##sym(__VA_ARGS__)

extern "C" {

// Mutex::~Mutex
CYBERSYN_REAL(void, _ZN4absl7debian35MutexD1Ev, Mutex* mu) {
  __tsan_mutex_destroy(mu, 0);
  __real__ZN4absl7debian35MutexD1Ev(mu);
}

// Mutex::Lock, Unlock, TryLock
CYBERSYN_REAL(void, _ZN4absl7debian35Mutex4LockEv, Mutex* mu) {
  PreLock(mu, 0);
  __real__ZN4absl7debian35Mutex4LockEv(mu);
  PostLock(mu, 0, true);
}
CYBERSYN_REAL(void, _ZN4absl7debian35Mutex6UnlockEv, Mutex* mu) {
  PreUnlock(mu, 0);
  __real__ZN4absl7debian35Mutex6UnlockEv(mu);
  PostUnlock(mu, 0);
}
CYBERSYN_REAL(bool, _ZN4absl7debian35Mutex7TryLockEv, Mutex* mu) {
  PreLock(mu, kTry);
  bool locked = __real__ZN4absl7debian35Mutex7TryLockEv(mu);
  PostLock(mu, kTry, locked);
  return locked;
}

// Mutex::ReaderLock, ReaderUnlock, ReaderTryLock
CYBERSYN_REAL(void, _ZN4absl7debian35Mutex10ReaderLockEv, Mutex* mu) {
  PreLock(mu, kRead);
  __real__ZN4absl7debian35Mutex10ReaderLockEv(mu);
  PostLock(mu, kRead, true);
}
CYBERSYN_REAL(void, _ZN4absl7debian35Mutex12ReaderUnlockEv, Mutex* mu) {
  PreUnlock(mu, kRead);
  __real__ZN4absl7debian35Mutex12ReaderUnlockEv(mu);
  PostUnlock(mu, kRead);
}
CYBERSYN_REAL(bool, _ZN4absl7debian35Mutex13ReaderTryLockEv, Mutex* mu) {
  PreLock(mu, kRead | kTry);
  bool locked = __real__ZN4absl7debian35Mutex13ReaderTryLockEv(mu);
  PostLock(mu, kRead | kTry, locked);
  return locked;
}

// Mutex::LockWhen, LockWhenWithTimeout, LockWhenWithDeadline (they always return holding it)
CYBERSYN_REAL(void, _ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE, Mutex* mu,
              const Condition& c) {
  PreLock(mu, 0);
  __real__ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE(mu, c);
  PostLock(mu, 0, true);
}
CYBERSYN_REAL(bool, _ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE,
              Mutex* mu, const Condition& c, Duration d) {
  PreLock(mu, 0);
  bool r =
      __real__ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE(mu, c, d);
  PostLock(mu, 0, true);
  return r;
}
CYBERSYN_REAL(bool, _ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE,
              Mutex* mu, const Condition& c, Time t) {
  PreLock(mu, 0);
  bool r =
      __real__ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE(mu, c, t);
  PostLock(mu, 0, true);
  return r;
}

// Mutex::Await, AwaitWithTimeout, AwaitWithDeadline (called holding it; hold it on return)
CYBERSYN_REAL(void, _ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE, Mutex* mu, const Condition& c) {
  Released(mu);
  __real__ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE(mu, c);
  PostLock(mu, 0, true);
}
CYBERSYN_REAL(bool, _ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE,
              Mutex* mu, const Condition& c, Duration d) {
  Released(mu);
  bool r =
      __real__ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE(mu, c, d);
  PostLock(mu, 0, true);
  return r;
}
CYBERSYN_REAL(bool, _ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE,
              Mutex* mu, const Condition& c, Time t) {
  Released(mu);
  bool r = __real__ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE(mu, c, t);
  PostLock(mu, 0, true);
  return r;
}

// CondVar::Wait, WaitWithTimeout, WaitWithDeadline
CYBERSYN_REAL(void, _ZN4absl7debian37CondVar4WaitEPNS0_5MutexE, CondVar* cv, Mutex* mu) {
  Released(mu);
  __real__ZN4absl7debian37CondVar4WaitEPNS0_5MutexE(cv, mu);
  PostLock(mu, 0, true);
}
CYBERSYN_REAL(bool, _ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE,
              CondVar* cv, Mutex* mu, Duration d) {
  Released(mu);
  bool r = __real__ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE(cv, mu, d);
  PostLock(mu, 0, true);
  return r;
}
CYBERSYN_REAL(bool, _ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE, CondVar* cv,
              Mutex* mu, Time t) {
  Released(mu);
  bool r = __real__ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE(cv, mu, t);
  PostLock(mu, 0, true);
  return r;
}

// Notification::Notify releases; a wait that saw the notification acquires.
CYBERSYN_REAL(void, _ZN4absl7debian312Notification6NotifyEv, Notification* n) {
  __tsan_release(n);
  __real__ZN4absl7debian312Notification6NotifyEv(n);
}
CYBERSYN_REAL(void, _ZNK4absl7debian312Notification19WaitForNotificationEv, const Notification* n) {
  __real__ZNK4absl7debian312Notification19WaitForNotificationEv(n);
  __tsan_acquire(const_cast<Notification*>(n));
}
CYBERSYN_REAL(bool, _ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE,
              const Notification* n, Duration d) {
  bool r =
      __real__ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE(n, d);
  if (r) __tsan_acquire(const_cast<Notification*>(n));
  return r;
}
CYBERSYN_REAL(bool, _ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE,
              const Notification* n, Time t) {
  bool r = __real__ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE(n, t);
  if (r) __tsan_acquire(const_cast<Notification*>(n));
  return r;
}

}  // extern "C"
