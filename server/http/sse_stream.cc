#include "server/http/sse_stream.h"

#include "server/api/convert.h"
#include "server/api/json.h"

namespace epmdx::http {
namespace {

using Bytes = api::EncodedEvents::Bytes;

Bytes share(std::string s) {
  return std::make_shared<const std::string>(std::move(s));
}

}  // namespace

SseStream::SseStream(beast::tcp_stream stream, api::OpenedWatch watch,
                     std::chrono::milliseconds heartbeat, api::Service& api,
                     api::EncodedEvents& encoded, ClosedFn on_closed)
    : stream_(std::move(stream)),
      watch_(std::move(watch)),
      heartbeat_(heartbeat),
      api_(api),
      encoded_(encoded),
      on_closed_(std::move(on_closed)) {
  beast::error_code ec;
  // A small send buffer bounds what the kernel holds for a client that stopped reading.
  stream_.socket().set_option(asio::socket_base::send_buffer_size(kSendBuffer), ec);
}

std::vector<Bytes> SseStream::takeInitial(api::OpenedWatch& watch) {
  std::vector<Bytes> parts;
  while (auto chunk = watch.cursor.nextInitial()) {
    const auto msg = api::initialMessage(watch.cursor.names(), *chunk);
    parts.push_back(share(api::sseFrame("initial", chunk->revision, api::toJson(msg))));
  }
  return parts;
}

void SseStream::begin(std::vector<Bytes> initial) {
  std::vector<Bytes> parts;
  parts.push_back(
      share("HTTP/1.1 200 OK\r\nServer: epmdx\r\nContent-Type: text/event-stream\r\n"
            "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\nConnection: close\r\n\r\n"
            "retry: 1000\n\n"));             // Reconnect quickly after a daemon restart.
  for (auto& frame : takeInitial(watch_)) {  // Unless the server took it already.
    parts.push_back(std::move(frame));
  }
  for (auto& frame : initial) {
    parts.push_back(std::move(frame));
  }
  write(std::move(parts));
}

void SseStream::pump() {
  if (closed_ || ending_) {
    return;
  }
  if (writing_) {
    // The client is not keeping up. Once the history has moved past its cursor it cannot
    // resume anyway: close now; its reconnect (Last-Event-ID) is answered with `resync`.
    if (watch_.cursor.stalled()) {
      api_.countCut(api::Surface::Sse);
      close();
    }
    return;
  }
  send(watch_.cursor.next());
}

void SseStream::tick(std::chrono::steady_clock::time_point now) {
  if (closed_ || ending_ || writing_ || now - last_write_ < heartbeat_) {
    return;
  }
  send(watch_.cursor.next(true));  // Changes first: a progress frame must not skip one.
}

void SseStream::send(const api::WatchStep& step) {
  using Kind = api::WatchStep::Kind;
  switch (step.kind) {
    case Kind::Nothing:
      if (step.more) {  // Other clusters' changes still to read past: on the next turn.
        asio::post(stream_.get_executor(), [self = shared_from_this()] { self->pump(); });
      }
      return;
    case Kind::Initial:
      write({share(api::sseFrame("initial", step.revision,
                                 api::toJson(api::initialMessage(watch_.cursor.names(), step))))});
      return;
    case Kind::Events: {
      std::vector<Bytes> parts;
      parts.reserve(step.events.size());
      for (const auto& e : step.events) {
        parts.push_back(encoded_.sseFrame(e));
      }
      write(std::move(parts));
      return;
    }
    case Kind::Progress: {
      // Nothing changed up to the current revision. Also keeps proxies from closing an idle
      // stream, and advances the browser's Last-Event-ID.
      v1::WatchNodesResponse msg;
      msg.set_revision(step.revision);
      write({share(api::sseFrame("progress", step.revision, api::toJson(msg)))});
      return;
    }
    case Kind::Coverage:
      write({share(api::sseFrame("coverage", step.revision, api::toJson(*step.coverage)))});
      return;
    case Kind::FellBehind: {
      api_.countCut(api::Surface::Sse);
      ending_ = true;
      const api::Error e = api::WatchCursor::fellBehindError(step.revision, step.rejection);
      write({share(api::sseFrame("resync", step.rejection.current, api::errorJson(e)))});
      return;
    }
  }
}

void SseStream::end() {
  if (closed_) {
    return;
  }
  ending_ = true;
  if (!writing_) {
    close();
  }
}

void SseStream::write(std::vector<Bytes> parts) {
  in_flight_ = std::move(parts);
  buffers_.clear();
  for (const auto& p : in_flight_) {
    buffers_.emplace_back(p->data(), p->size());
  }
  writing_ = true;
  last_write_ = std::chrono::steady_clock::now();
  stream_.expires_after(kWriteTimeout);
  asio::async_write(stream_, buffers_, [self = shared_from_this()](beast::error_code ec, size_t) {
    self->onWrite(ec);
  });
}

void SseStream::onWrite(beast::error_code ec) {
  writing_ = false;
  in_flight_.clear();
  if (ec || ending_) {
    close();
    return;
  }
  pump();
}

void SseStream::close() {
  if (closed_) {
    return;
  }
  closed_ = true;
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream_.socket().close(ignored);
  watch_.cursor.close();
  watch_.slot = api::WatchSlot();
  if (on_closed_) {
    on_closed_(this);  // The server drops its reference; pending handlers keep ours.
  }
}

}  // namespace epmdx::http
