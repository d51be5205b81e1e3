#pragma once

// Wakes watchers after a change, so that the writer (the epmd thread) never waits on them:
// a mutation only flips a flag and signals; the fan-out to every watcher runs on the hub's
// own thread. A wake callback must be quick and must not block (it typically starts an
// asynchronous write or notifies a condition variable).

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace epmdx::registry {

class WatchHub {
 public:
  using WakeFn = std::function<void()>;

  /// @param async true: fan out on a dedicated thread (production). false: fan out inline in
  ///        notify(), which makes unit tests deterministic.
  explicit WatchHub(bool async);
  ~WatchHub();
  WatchHub(const WatchHub&) = delete;
  WatchHub& operator=(const WatchHub&) = delete;

  /// Subscribes; returns a token for remove(). Thread-safe.
  uint64_t add(WakeFn wake);
  /// Unsubscribes. When it returns, `wake` is not running and will not run again.
  /// Must not be called from inside a wake callback.
  void remove(uint64_t token);

  /// Signals that something changed. Cheap and non-blocking when nobody watches.
  void notify();

  size_t size() const { return count_.load(std::memory_order_relaxed); }

 private:
  void run();
  void fanOut();

  const bool async_;
  // Three kinds of lock, so that nobody waits for a whole fan-out: signal_mu_ guards only the
  // two flags (held for a few instructions); watchers_mu_ guards the list and is held only to
  // change or copy it; each entry's own mu is held while its wake runs, so remove() waits
  // for that one wake at most (a thousand streams closing at once must not each wait behind
  // a fan-out to everybody). Never hold two.
  std::mutex signal_mu_;
  std::condition_variable cv_;
  bool pending_ = false;   // Guarded by signal_mu_.
  bool stopping_ = false;  // Guarded by signal_mu_.
  struct Entry {
    std::mutex mu;
    bool removed = false;  // Guarded by mu.
    WakeFn wake;
  };
  std::mutex watchers_mu_;
  uint64_t next_token_ = 1;                                            // Guarded by watchers_mu_.
  std::vector<std::pair<uint64_t, std::shared_ptr<Entry>>> watchers_;  // Guarded by watchers_mu_.
  std::atomic<size_t> count_{0};
  std::thread thread_;
};

}  // namespace epmdx::registry
