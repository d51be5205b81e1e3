#pragma once

// One HTTP/1.1 connection on the HTTP server's event loop: reads a request within bounds
// (header bytes, header count, body size, whatever the transfer encoding), asks the Router,
// writes the answer, and reads the next request from the same buffer (pipelined requests
// are answered in order). A watch request hands the socket over to an SseStream.

#include <chrono>
#include <memory>
#include <optional>
#include <string>

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

/// What a connection needs from its server (all called on the event loop's thread).
class ConnectionHost {
 public:
  virtual ~ConnectionHost() = default;
  virtual RouteResult route(const HttpRequest& req) = 0;
  virtual void startSse(beast::tcp_stream stream, SseStart start) = 0;
  virtual void connectionClosed() = 0;
  virtual const RequestLimits& limits() const = 0;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, ConnectionHost& host);
  ~Connection();
  void start();

 private:
  void readHeader();
  void onHeader(beast::error_code ec);
  void onBody(beast::error_code ec);
  void reject(int status, const std::string& status_name, const std::string& message);
  void send(HttpResponse res, bool keep_alive, bool head);

  beast::tcp_stream stream_;
  ConnectionHost& host_;
  std::string peer_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bool handed_over_ = false;
};

/// "127.0.0.1:50412" or "[::1]:50412".
std::string formatEndpoint(const tcp::endpoint& ep);

}  // namespace epmdx::http
