#pragma once

// One WatchNodes stream: a cursor into the registry's shared history, written with one
// message in flight at a time (gRPC's callback API, no thread per stream). The registry
// only wakes the reactor; the reactor pulls what it has not sent yet, in batches, from
// OnWriteDone or the wake-up. A reactor that falls behind the history ends with
// OUT_OF_RANGE: the client lists again.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <deque>
#include <mutex>

#include "epmdx/v1/registry.grpc.pb.h"
#include "server/registry/registry.h"

namespace epmdx::grpcapi {

class WatchSet;

class WatchReactor final : public grpc::ServerWriteReactor<v1::WatchNodesResponse> {
 public:
  static constexpr size_t kMaxEventsPerMessage = 256;
  static constexpr size_t kMaxNodesPerMessage = 1000;

  /// Starts the stream (or finishes it at once with an error status).
  WatchReactor(registry::Registry& registry, WatchSet& set, const v1::WatchNodesRequest& req);

  /// Registry wake-up (hub thread) or progress tick: write if nothing is in flight.
  void wake();
  /// Daemon shutdown: end the stream with UNAVAILABLE.
  void shutdown();

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  void tryWriteLocked();
  void finishLocked(grpc::Status status);

  registry::Registry& registry_;
  WatchSet& set_;
  registry::WatchPtr watch_;  // Reset only in OnDone, outside mu_ (see WatchHub).
  std::chrono::milliseconds progress_interval_;

  std::mutex mu_;  // Guards everything below. Lock order: mu_, then the registry's.
  std::deque<registry::RegistrationPtr> initial_;  // Snapshot still to send.
  bool initial_pending_ = false;                   // initial_state_complete still to be sent.
  bool write_pending_ = false;
  bool finished_ = false;
  registry::Revision sent_revision_ = 0;  // Everything up to here was delivered.
  std::chrono::steady_clock::time_point last_write_;
  v1::WatchNodesResponse message_;  // The message in flight (must outlive the write).
  std::vector<registry::Event> scratch_;
};

/// The live watch streams of one server: counts them (bounded), ticks their progress
/// messages, and ends them all on shutdown.
class WatchSet {
 public:
  explicit WatchSet(size_t max_watchers);
  ~WatchSet();

  /// Reserves a slot; false when max_watchers streams are open.
  bool tryAdd(WatchReactor* r);
  void remove(WatchReactor* r);
  void shutdownAll();
  bool shuttingDown() const;
  size_t size() const;
  /// Waits until every stream is done (after shutdownAll), at most `timeout`.
  void waitEmpty(std::chrono::milliseconds timeout);

 private:
  void tickLoop();

  const size_t max_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<WatchReactor*> live_;  // Guarded by mu_.
  bool shutting_down_ = false;       // Guarded by mu_.
  bool stop_ticker_ = false;         // Guarded by mu_.
  std::thread ticker_;
};

}  // namespace epmdx::grpcapi
