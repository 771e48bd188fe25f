// Lanes: a few worker threads, each running the jobs pushed to it in push order. The runtime
// processes each task (input partition) on one lane (partition p on lane p % n), so the
// tasks of one instance use the machine's cores while each task's messages are still
// applied one by one, in offset order, by one thread at a time.
//
// Drain() is the hand-back point: once it returns, every job pushed before it has run and what
// the jobs wrote is visible to the caller (the lane's mutex orders it), so the caller may touch
// the state the jobs used until it pushes again.
//
// Thread-safety: Push and Drain from any thread (the runtime's loop does both); the handler
// runs on the lane threads, one job at a time per lane.
#ifndef CYBERSYN_STREAM_LANES_H_
#define CYBERSYN_STREAM_LANES_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace cybersyn::stream {

template <typename Job>
class Lanes {
 public:
  using Handler = std::function<void(int lane, Job& job)>;

  // REQUIRES: lanes >= 1, max_queued >= 1.
  Lanes(int lanes, size_t max_queued, Handler handler) : handler_(std::move(handler)) {
    for (int i = 0; i < lanes; ++i) {
      lanes_.push_back(std::make_unique<Lane>());
      absl::MutexLock lock(&lanes_.back()->mu);
      lanes_.back()->max = max_queued;
    }
    for (int i = 0; i < lanes; ++i) lanes_[i]->thread = std::thread([this, i] { Loop(i); });
  }
  // Runs what was pushed, then joins the threads.
  ~Lanes() {
    for (auto& l : lanes_) {
      absl::MutexLock lock(&l->mu);
      l->stop = true;
    }
    for (auto& l : lanes_) l->thread.join();
  }
  Lanes(const Lanes&) = delete;
  Lanes& operator=(const Lanes&) = delete;

  int size() const { return static_cast<int>(lanes_.size()); }

  // Queues `job` on `lane`; blocks while that lane has max_queued jobs waiting (the caller then
  // stops reading input ahead of the work).
  void Push(int lane, Job job) {
    Lane& l = *lanes_[lane];
    absl::MutexLock lock(&l.mu);
    l.mu.Await(absl::Condition(
        +[](Lane* l) ABSL_EXCLUSIVE_LOCKS_REQUIRED(l->mu) { return l->queue.size() < l->max; },
        &l));
    l.queue.push_back(std::move(job));
  }

  // Returns once every job pushed so far has run.
  void Drain() {
    for (auto& l : lanes_) {
      absl::MutexLock lock(&l->mu);
      l->mu.Await(absl::Condition(
          +[](Lane* l)
               ABSL_EXCLUSIVE_LOCKS_REQUIRED(l->mu) { return l->queue.empty() && !l->busy; },
          l.get()));
    }
  }

 private:
  struct Lane {
    absl::Mutex mu;
    std::deque<Job> queue ABSL_GUARDED_BY(mu);
    size_t max ABSL_GUARDED_BY(mu) = 0;
    bool busy ABSL_GUARDED_BY(mu) = false;  // a job taken off the queue is running
    bool stop ABSL_GUARDED_BY(mu) = false;
    std::thread thread;
  };

  void Loop(int i) {
    Lane& l = *lanes_[i];
    while (true) {
      std::optional<Job> job;
      {
        absl::MutexLock lock(&l.mu);
        l.busy = false;
        l.mu.Await(absl::Condition(
            +[](Lane* l)
                 ABSL_EXCLUSIVE_LOCKS_REQUIRED(l->mu) { return !l->queue.empty() || l->stop; },
            &l));
        if (l.queue.empty()) return;  // stopping, nothing left
        job.emplace(std::move(l.queue.front()));
        l.queue.pop_front();
        l.busy = true;
      }
      handler_(i, *job);
    }
  }

  Handler handler_;
  std::vector<std::unique_ptr<Lane>> lanes_;
};

}  // namespace cybersyn::stream

#endif  // CYBERSYN_STREAM_LANES_H_
