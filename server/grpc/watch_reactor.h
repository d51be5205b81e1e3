#pragma once

// One WatchNodes stream: a cursor into the registry's shared history, written with one
// message in flight at a time (gRPC's callback API, no thread per stream). The registry
// only wakes the reactor; the reactor pulls what it has not sent yet, in batches, from
// OnWriteDone or the wake-up. Event bytes come from EncodedEvents, shared by every stream.
//
// A stream whose client stops reading keeps one message in flight and nothing else; the
// moment the history moves past its cursor it is finished with OUT_OF_RANGE (the client
// lists again). gRPC sends that status only after the stalled write, so a client that never
// reads again (stalled at the TCP level) would keep the stream, its watcher slot and its
// buffers until keepalive gives up: a stream still not done kCancelGrace after it was
// finished is cancelled (RST_STREAM), which fails the stalled write and ends it.

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "epmdx/v1/registry.pb.h"
#include "server/api/encoded_events.h"
#include "server/api/service.h"

namespace epmdx::grpcapi {

class WatchSet;

class WatchReactor final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  /// How long a finished stream may wait for its stalled write before it is cancelled:
  /// enough for a client that is only slow (a GC pause) to read its OUT_OF_RANGE.
  static constexpr std::chrono::milliseconds kCancelGrace{1000};

  /// Starts the stream (or finishes it at once with an error status).
  WatchReactor(grpc::CallbackServerContext* ctx, api::Service& api, api::EncodedEvents& encoded,
               WatchSet& set, const v1::WatchNodesRequest& req);

  /// Registry wake-up (hub thread) or progress tick: write if nothing is in flight; cancel
  /// a finished stream whose write has been stalled for kCancelGrace.
  void wake();
  /// Daemon shutdown: end the stream with UNAVAILABLE.
  void shutdown();

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  void tryWriteLocked();
  /// Changes (or none: a progress) as one response: shared entries, then the revision.
  grpc::ByteBuffer eventsMessage(const api::WatchStep& step);
  void fellBehindLocked(const registry::WatchRejection& rejection);
  void finishLocked(grpc::Status status);

  grpc::CallbackServerContext* ctx_;
  api::Service& api_;
  api::EncodedEvents& encoded_;
  WatchSet& set_;
  api::OpenedWatch watch_;  // Its cursor is reset only in OnDone, outside mu_ (see WatchHub).
  std::chrono::milliseconds progress_interval_;
  bool in_set_ = false;

  // Guards everything below, and the cursor. Lock order: WatchSet::mu_ (its tick and
  // shutdownAll call into a stream), then mu_, then the registry's (the cursor polls). The
  // constructor takes WatchSet::mu_ under mu_ (add), safe only because a stream is not in
  // the set yet: no tick or shutdown can be waiting for its mu_.
  std::mutex mu_;
  bool write_pending_ = false;
  bool finished_ = false;
  bool fell_behind_ = false;  // Finished for falling behind (counted once).
  bool cancelled_ = false;    // TryCancel() called: OnDone follows.
  std::chrono::steady_clock::time_point finished_at_;
  std::chrono::steady_clock::time_point last_write_;
  grpc::ByteBuffer message_;  // The message in flight (must outlive the write).
};

/// The live watch streams of one server: ticks their progress messages and ends them all
/// on shutdown. (How many may be open is api::Service's business.) The tick is a gRPC alarm
/// on gRPC's own threads, not a thread of ours: thread count is a budget (pod PID limits).
class WatchSet {
 public:
  WatchSet();
  ~WatchSet();

  /// False once shutdownAll() ran: the stream must not start.
  bool add(WatchReactor* r);
  void remove(WatchReactor* r);
  void shutdownAll();
  /// Waits until every stream is done (after shutdownAll), at most `timeout`.
  void waitEmpty(std::chrono::milliseconds timeout);

 private:
  void armTickLocked();
  void onTick(bool fired);

  std::mutex mu_;  // Taken before any stream's mu_ (see WatchReactor::mu_).
  std::condition_variable cv_;
  std::vector<WatchReactor*> live_;  // Guarded by mu_.
  bool shutting_down_ = false;       // Guarded by mu_.
  bool stop_ticker_ = false;         // Guarded by mu_.
  bool tick_armed_ = false;          // Guarded by mu_: an alarm callback is still to come.
  grpc::Alarm alarm_;
};

}  // namespace epmdx::grpcapi
