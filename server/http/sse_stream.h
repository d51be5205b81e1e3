#pragma once

// One server-sent-events watch (GET /v1/watch): a cursor into the registry's history,
// rendered as SSE frames. Runs on the httplib worker thread that serves the connection;
// the registry only wakes it.
//
// Frames (each `data:` is the canonical JSON of an epmdx.v1 message):
//   event: initial   data: WatchNodesResponse (initial_nodes)   id: snapshot revision
//   event: change    data: NodeEvent                             id: its revision
//   event: progress  data: WatchNodesResponse (revision only)    id: current revision
//   event: resync    data: ErrorBody (OUT_OF_RANGE)              then the stream ends
// `id:` is always a registry revision, so a browser's Last-Event-ID resumes exactly.

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>

#include "server/registry/registry.h"

namespace epmdx::http {

class SseStream {
 public:
  struct Options {
    std::optional<registry::Revision> after;  // ?since= or Last-Event-ID.
    bool initial = false;                     // ?initial=true: snapshot first.
    std::chrono::milliseconds heartbeat{15000};
  };
  SseStream(registry::Registry& registry, Options options);
  ~SseStream();

  /// Blocks until there is something to send (at most one heartbeat interval), then
  /// returns the frames to write. Sets `done` when the stream must end after them.
  std::string next(bool& done);

  /// Ends the stream at its next wake-up (daemon shutdown).
  void stop();

 private:
  void wake();

  registry::Registry& registry_;
  Options options_;
  registry::WatchPtr watch_;
  std::string pending_;  // Frames decided at construction (initial state, resync).
  bool end_after_pending_ = false;
  registry::Revision sent_revision_ = 0;
  std::chrono::steady_clock::time_point last_frame_;

  std::mutex mu_;
  std::condition_variable cv_;
  // Starts set: a change that landed between creating the cursor and subscribing woke
  // nobody, so the first wait must not sleep before reading the cursor once.
  bool signalled_ = true;  // Guarded by mu_.
  bool stopped_ = false;   // Guarded by mu_.
};

}  // namespace epmdx::http
