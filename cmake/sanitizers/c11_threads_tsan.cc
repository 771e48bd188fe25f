// TSan build only (CYBERSYN_SANITIZE=thread): C11 threads as calls TSan intercepts.
//
// librdkafka makes its threads, mutexes and condition variables with glibc's C11 <threads.h>
// (thrd_create, mtx_lock, ...). glibc implements those by calling pthread internally, past
// TSan's interceptors, and GCC 12's TSan has no C11 interceptors of its own: a broker thread was
// unknown to TSan and crashed in its allocator at the first malloc (the embedded-broker tests
// segfaulted). These definitions in the executable take precedence over glibc's (librdkafka
// binds to them dynamically) and call the pthread functions, which TSan does intercept. They do
// what glibc's do: glibc's mtx_t, cnd_t and once_flag are its pthread types. Creating and
// destroying a mutex or condition variable counts as writing it for TSan; librdkafka publishes
// and retires those objects through its own atomics, which TSan cannot see, so those two steps
// are not counted as memory accesses (locking them still is).
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <threads.h>

#include <new>

// In libtsan, not declared by GCC 12's <sanitizer/tsan_interface.h>.
extern "C" void __tsan_ignore_thread_begin();
extern "C" void __tsan_ignore_thread_end();

namespace {

int Result(int rc) {
  if (rc == 0) return thrd_success;
  if (rc == ETIMEDOUT) return thrd_timedout;
  if (rc == EBUSY) return thrd_busy;
  if (rc == ENOMEM || rc == EAGAIN) return thrd_nomem;
  return thrd_error;
}

struct Start {
  thrd_start_t func;
  void* arg;
};

void* Trampoline(void* p) {
  Start start = *static_cast<Start*>(p);
  delete static_cast<Start*>(p);
  return reinterpret_cast<void*>(static_cast<intptr_t>(start.func(start.arg)));
}

pthread_mutex_t* Mu(mtx_t* m) { return reinterpret_cast<pthread_mutex_t*>(m); }
pthread_cond_t* Cv(cnd_t* c) { return reinterpret_cast<pthread_cond_t*>(c); }

// Runs f with TSan not recording this thread's memory accesses.
template <typename F>
auto Unrecorded(F f) {
  __tsan_ignore_thread_begin();
  auto r = f();
  __tsan_ignore_thread_end();
  return r;
}

}  // namespace

extern "C" {

int thrd_create(thrd_t* thr, thrd_start_t func, void* arg) {
  auto* start = new (std::nothrow) Start{func, arg};
  if (start == nullptr) return thrd_nomem;
  int rc = pthread_create(reinterpret_cast<pthread_t*>(thr), nullptr, Trampoline, start);
  if (rc != 0) delete start;
  return Result(rc);
}

int thrd_join(thrd_t thr, int* res) {
  void* ret = nullptr;
  int rc = pthread_join(static_cast<pthread_t>(thr), &ret);
  if (rc == 0 && res != nullptr) *res = static_cast<int>(reinterpret_cast<intptr_t>(ret));
  return Result(rc);
}

int thrd_detach(thrd_t thr) { return Result(pthread_detach(static_cast<pthread_t>(thr))); }

int mtx_init(mtx_t* m, int type) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  if (type & mtx_recursive) pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
  int rc = Unrecorded([&] { return pthread_mutex_init(Mu(m), &attr); });
  pthread_mutexattr_destroy(&attr);
  return Result(rc);
}
int mtx_lock(mtx_t* m) { return Result(pthread_mutex_lock(Mu(m))); }
int mtx_trylock(mtx_t* m) { return Result(pthread_mutex_trylock(Mu(m))); }
int mtx_timedlock(mtx_t* __restrict m, const struct timespec* __restrict t) {
  return Result(pthread_mutex_timedlock(Mu(m), t));
}
int mtx_unlock(mtx_t* m) { return Result(pthread_mutex_unlock(Mu(m))); }
void mtx_destroy(mtx_t* m) {
  Unrecorded([&] { return pthread_mutex_destroy(Mu(m)); });
}

int cnd_init(cnd_t* c) {
  return Result(Unrecorded([&] { return pthread_cond_init(Cv(c), nullptr); }));
}
int cnd_signal(cnd_t* c) { return Result(pthread_cond_signal(Cv(c))); }
int cnd_broadcast(cnd_t* c) { return Result(pthread_cond_broadcast(Cv(c))); }
int cnd_wait(cnd_t* c, mtx_t* m) { return Result(pthread_cond_wait(Cv(c), Mu(m))); }
int cnd_timedwait(cnd_t* __restrict c, mtx_t* __restrict m, const struct timespec* __restrict t) {
  return Result(pthread_cond_timedwait(Cv(c), Mu(m), t));
}
void cnd_destroy(cnd_t* c) {
  Unrecorded([&] { return pthread_cond_destroy(Cv(c)); });
}

void call_once(once_flag* flag, void (*func)(void)) {
  pthread_once(reinterpret_cast<pthread_once_t*>(flag), func);
}

}  // extern "C"
