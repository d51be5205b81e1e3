#pragma once

// A few threads with a bounded queue for the HTTP answers that are costly to build (lists of
// thousands of nodes or events, a watch's initial state): built there, they never hold up
// the event loop, so health probes and small requests stay fast whatever is being
// serialized. A full queue refuses the job at once (the caller answers 503) rather than
// letting waiting work, and the connections it holds, grow without bound.

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

  /// `queue_limit` jobs may wait besides the `threads` being run (0: none waits).
  WorkerPool(size_t threads, size_t queue_limit);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void start();
  /// @return false (and `job` untouched) when the queue is full or the pool stopped.
  bool trySubmit(Job& job);
  /// Joins the threads after the jobs they are running; jobs still waiting are destroyed
  /// here, on the caller's thread.
  void stop();

 private:
  void run();

  const size_t thread_count_;
  const size_t queue_limit_;
  std::mutex mu_;
  std::condition_variable ready_;
  std::deque<Job> queue_;  // Guarded by mu_.
  size_t busy_ = 0;        // Jobs being run; guarded by mu_.
  bool stopping_ = false;  // Guarded by mu_.
  std::vector<std::thread> threads_;
};

}  // namespace epmdx::http
