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

std::vector<Bytes> SseStream::takeInitial(api::OpenedWatch& watch,
                                          const registry::Registry& registry) {
  std::vector<Bytes> parts;
  if (!watch.with_initial) {
    return parts;
  }
  watch.with_initial = false;  // Taken: begin() does not encode it again.
  const auto& nodes = watch.initial;
  v1::WatchNodesResponse msg;
  size_t i = 0;
  do {
    for (size_t n = 0; n < api::kMaxNodesPerMessage && i < nodes.size(); ++n, ++i) {
      api::toProto(registry, *nodes[i], *msg.add_initial_nodes());
    }
    msg.set_initial_state_complete(i == nodes.size());
    msg.set_revision(watch.revision);
    parts.push_back(share(api::sseFrame("initial", watch.revision, api::toJson(msg))));
    msg.Clear();
  } while (i < nodes.size());
  watch.initial.clear();
  watch.initial.shrink_to_fit();
  return parts;
}

void SseStream::begin(std::vector<Bytes> initial) {
  std::vector<Bytes> parts;
  parts.push_back(
      share("HTTP/1.1 200 OK\r\nServer: epmdx\r\nContent-Type: text/event-stream\r\n"
            "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\nConnection: close\r\n\r\n"
            "retry: 1000\n\n"));  // Reconnect quickly after a daemon restart.
  for (auto& frame : takeInitial(watch_, encoded_.registry())) {
    parts.push_back(std::move(frame));
  }
  for (auto& frame : initial) {
    parts.push_back(std::move(frame));
  }
  write(std::move(parts));
}

std::string SseStream::progressFrame() {
  // Nothing changed up to the current revision. Also keeps proxies from closing an idle
  // stream, and advances the browser's Last-Event-ID.
  watch_.revision = std::max(watch_.revision, watch_.watch->nextRevision() - 1);
  v1::WatchNodesResponse msg;
  msg.set_revision(watch_.revision);
  return api::sseFrame("progress", watch_.revision, api::toJson(msg));
}

void SseStream::pump() {
  if (closed_ || ending_) {
    return;
  }
  if (writing_) {
    // The client is not keeping up. Once the history has moved past its cursor it cannot
    // resume anyway: close now; its reconnect (Last-Event-ID) is answered with `resync`.
    if (watch_.watch->fellBehind()) {
      api_.countCut(api::Surface::Sse);
      close();
    }
    return;
  }
  scratch_.clear();
  auto polled = watch_.watch->poll(api::kMaxEventsPerBatch, scratch_);
  if (!polled.ok()) {
    api_.countCut(api::Surface::Sse);
    ending_ = true;
    const api::Error e = api::Service::fellBehind(watch_.revision, polled.error());
    write({share(api::sseFrame("resync", polled.error().current, api::errorJson(e)))});
    return;
  }
  if (scratch_.empty()) {
    return;
  }
  std::vector<Bytes> parts;
  parts.reserve(scratch_.size());
  for (const auto& e : scratch_) {
    if (watch_.wants(e)) {
      parts.push_back(encoded_.sseFrame(e));
    }
    watch_.revision = e.revision;
  }
  if (parts.empty()) {
    pump();  // Only other clusters' changes: read on (a batch at a time).
    return;
  }
  write(std::move(parts));
}

void SseStream::tick(std::chrono::steady_clock::time_point now) {
  if (closed_ || ending_ || writing_ || now - last_write_ < heartbeat_) {
    return;
  }
  pump();  // Catch up first: a progress frame must not skip a change.
  if (!writing_ && !closed_ && !ending_) {
    write({share(progressFrame())});
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
  watch_.watch.reset();
  watch_.slot = api::WatchSlot();
  if (on_closed_) {
    on_closed_(this);  // The server drops its reference; pending handlers keep ours.
  }
}

}  // namespace epmdx::http
