#pragma once

// One HTTP/1.1 connection on the HTTP server's event loop: reads a request within bounds
// (header bytes, header count, body size, whatever the transfer encoding), asks the Router,
// writes the answer, and reads the next request from the same buffer (pipelined requests
// are answered in order: the next one is not read before this one's answer is written,
// even when a worker thread builds it). A watch request hands the socket over to an
// SseStream.

#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "server/api/encoded_events.h"
#include "server/http/beast.h"
#include "server/http/router.h"

namespace epmdx::http {

/// Bounds of a request; anything larger is refused and the connection closed.
struct RequestLimits {
  size_t header_bytes = 16 * 1024;  // Request line and every header: 431 above.
  size_t header_count = 100;        // 431 above.
  size_t body_bytes = 64 * 1024;    // 413 above.
  std::chrono::seconds idle{30};    // Keep-alive idle and slow-request timeout.
};

class Connection;
using ConnectionList = std::list<Connection*>;

/// A routed request: the result, and a watch's `initial` frames when a worker encoded them.
struct Answer {
  RouteResult result;
  std::vector<api::EncodedEvents::Bytes> initial;
};
using AnswerFn = std::function<void(Answer)>;

/// What a connection needs from its server (all called on the event loop's thread).
class ConnectionHost {
 public:
  virtual ~ConnectionHost() = default;
  /// Routes `req` and calls `done` on the event loop's thread: at once, or later when a
  /// worker built the answer (`req`'s views stay valid until then; `done` holds the
  /// connection).
  virtual void route(const HttpRequest& req, AnswerFn done) = 0;
  virtual void startSse(beast::tcp_stream stream, SseStart start,
                        std::vector<api::EncodedEvents::Bytes> initial) = 0;
  /// Lists the connection (oldest first) until connectionClosed().
  virtual ConnectionList::iterator connectionOpened(Connection* c) = 0;
  virtual void connectionClosed(ConnectionList::iterator it) = 0;
  /// Unlists a connection that became an SSE stream (the stream keeps its count).
  virtual void connectionHandedOver(ConnectionList::iterator it) = 0;
  virtual const RequestLimits& limits() const = 0;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, ConnectionHost& host);
  ~Connection();
  void start();
  /// Waiting for a request (idle keep-alive, or nothing sent yet): what goes first when the
  /// server is full, so idle sockets cannot lock out health probes and real clients.
  bool idle() const { return idle_; }
  /// Closes the socket; the pending read ends and the connection goes away. The server has
  /// already unlisted it and counted it out.
  void shed();

 private:
  void readHeader();
  void onHeader(beast::error_code ec);
  void onBody(beast::error_code ec);
  void answer(Answer answer);
  /// Answers an error of the HTTP layer and closes: the request cannot be read on.
  void reject(HttpError kind, std::string message);
  void send(HttpResponse res, bool keep_alive, bool head);

  beast::tcp_stream stream_;
  ConnectionHost& host_;
  std::string peer_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  HttpRequest request_;  // Views into parser_'s request, being answered.
  bool handed_over_ = false;
  bool idle_ = false;
  ConnectionList::iterator listed_;
};

}  // namespace epmdx::http
