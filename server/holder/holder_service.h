#pragma once

// Runs HolderResolver off the caller's thread: the epmd thread, the gRPC and HTTP handlers
// queue requests and get the answer by callback, on the service's own thread. Also a
// periodic refresh (every few seconds: one batch costs milliseconds, see docs/dead-names.md).

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "server/holder/holder_resolver.h"

namespace epmdx::holder {

class HolderService {
 public:
  /// Runs on the service thread with one Holder per requested connection, in order. Must not
  /// block for long (it delays the next request) and must not call stop() or destroy the
  /// service.
  using Done = std::function<void(std::vector<Holder>, const ResolveStats&)>;
  /// Runs on the service thread at each periodic refresh: the connections to resolve now.
  using Connections = std::function<std::vector<ConnectionKey>()>;

  explicit HolderService(HolderResolver::Options options = {});
  /// Stops: waits for the batch in progress, drops queued ones without calling them.
  ~HolderService();
  HolderService(const HolderService&) = delete;
  HolderService& operator=(const HolderService&) = delete;

  /// Queues one batch and returns at once. Thread-safe.
  void resolve(std::vector<ConnectionKey> connections, Done done);

  /// Every `interval` (first run at once), resolves `connections()` and calls `done`. One
  /// schedule per service: a second call replaces it; an interval of zero cancels it.
  /// Thread-safe.
  void every(std::chrono::milliseconds interval, Connections connections, Done done);

 private:
  struct Request {
    std::vector<ConnectionKey> connections;
    Done done;
  };
  void run();

  const HolderResolver resolver_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Request> queue_;                         // Guarded by mu_.
  std::chrono::milliseconds interval_{0};             // Guarded by mu_.
  Connections periodic_connections_;                  // Guarded by mu_.
  Done periodic_done_;                                // Guarded by mu_.
  std::chrono::steady_clock::time_point next_run_{};  // Guarded by mu_.
  bool stopping_ = false;                             // Guarded by mu_.
  std::thread thread_;
};

}  // namespace epmdx::holder
