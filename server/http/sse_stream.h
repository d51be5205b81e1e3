#pragma once

// One server-sent-events watch (GET /v1/watch) on the HTTP server's event loop: a cursor into
// the registry's history, written as SSE frames with one write in flight. Frames of changes
// are shared bytes from EncodedEvents (one encoding for every watcher).
//
// Frames (each `data:` is the canonical JSON of an epmdx.v1 message):
//   event: initial   data: WatchNodesResponse (initial_nodes)   id: snapshot revision
//   event: change    data: NodeEvent                             id: its revision
//   event: progress  data: WatchNodesResponse (revision only)    id: current revision
//   event: resync    data: ErrorBody (OUT_OF_RANGE)              then the stream ends
// `id:` is always a registry revision, so a browser's Last-Event-ID resumes exactly.
//
// Budget per watcher: one batch of shared frames in flight, a kernel send buffer of
// kSendBuffer bytes, and the cursor. A client that stops reading is closed when a write
// makes no progress for kWriteTimeout, or at once when the history moves past its cursor
// (its reconnect then gets `resync`): it can never hold the history or the daemon back.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "server/api/encoded_events.h"
#include "server/api/service.h"
#include "server/http/beast.h"

namespace epmdx::http {

class SseStream : public std::enable_shared_from_this<SseStream> {
 public:
  static constexpr int kSendBuffer = 64 * 1024;
  static constexpr std::chrono::seconds kWriteTimeout{10};

  using ClosedFn = std::function<void(SseStream*)>;
  /// `api` counts the streams cut for falling behind.
  SseStream(beast::tcp_stream stream, api::OpenedWatch watch, std::chrono::milliseconds heartbeat,
            api::Service& api, api::EncodedEvents& encoded, ClosedFn on_closed);

  /// The `initial` frames of a watch opened with initial state (none otherwise), and the
  /// nodes released. Thread-free: the HTTP server calls it on a worker, off the event loop.
  static std::vector<api::EncodedEvents::Bytes> takeInitial(api::OpenedWatch& watch);

  /// Writes the response head, `retry:` and the initial state (`initial` when it was taken
  /// already, else encoded here).
  void begin(std::vector<api::EncodedEvents::Bytes> initial = {});
  /// Sends what is new since the last write (called after every registry change).
  void pump();
  /// Sends a progress frame when the stream was idle for its heartbeat.
  void tick(std::chrono::steady_clock::time_point now);
  /// Ends the stream after what is in flight (daemon draining).
  void end();

 private:
  /// Encodes and writes what the cursor says is next.
  void send(const api::WatchStep& step);
  void write(std::vector<api::EncodedEvents::Bytes> parts);
  void onWrite(beast::error_code ec);
  void close();

  beast::tcp_stream stream_;
  api::OpenedWatch watch_;
  std::chrono::milliseconds heartbeat_;
  api::Service& api_;
  api::EncodedEvents& encoded_;
  ClosedFn on_closed_;
  std::chrono::steady_clock::time_point last_write_;
  bool writing_ = false;
  bool ending_ = false;
  bool closed_ = false;
  std::vector<api::EncodedEvents::Bytes> in_flight_;  // Keeps the bytes of the write alive.
  std::vector<asio::const_buffer> buffers_;
};

}  // namespace epmdx::http
