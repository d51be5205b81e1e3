#pragma once

// A few threads with a bounded queue for the HTTP answers that are costly to build (lists of
// thousands of nodes or events, a watch's initial state): built there, they never hold up
// the event loop, so health probes and small requests stay fast whatever is being
// serialized. What may wait is bounded by its size, not by a count of requests: each job
// says what it costs (the nodes or events it will serialize), and a job that finds no free
// thread waits only while the cost of everything waiting stays within the budget. So a
// thousand watchers of a 20-name registry all wait their turn (a fraction of a second of
// work), while a few 15,000-name lists fill it; beyond it the job is refused at once (the
// caller answers 503) rather than letting waiting work, and the connections it holds, grow
// without bound.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace epmdx::http {

class WorkerPool {
 public:
  /// Runs on a worker and returns what to do once the worker counts as free again (post
  /// the answer, say): whoever sees that answer can count on the worker taking a new job.
  using Finish = std::function<void()>;
  using Job = std::function<Finish()>;

  /// Jobs costing at most `wait_budget` in all may wait besides the `threads` being run
  /// (0: none waits; a job that finds a free thread runs whatever its cost).
  WorkerPool(size_t threads, size_t wait_budget);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void start();
  /// @param cost what the job will do, in the caller's unit (nodes to serialize).
  /// @return false (and `job` untouched) when it would exceed the budget or the pool stopped.
  bool trySubmit(Job& job, size_t cost);
  /// Joins the threads after the jobs they are running; jobs still waiting are destroyed
  /// here, on the caller's thread.
  void stop();

 private:
  void run();

  const size_t thread_count_;
  const size_t wait_budget_;
  std::mutex mu_;
  std::condition_variable ready_;
  struct Waiting {
    Job job;
    size_t cost;
  };
  std::deque<Waiting> queue_;  // Guarded by mu_.
  size_t queued_cost_ = 0;     // Sum of the waiting jobs' costs; guarded by mu_.
  size_t busy_ = 0;            // Jobs being run; guarded by mu_.
  bool stopping_ = false;      // Guarded by mu_.
  std::vector<std::thread> threads_;
};

}  // namespace epmdx::http
