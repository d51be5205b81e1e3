#pragma once

// The HTTP surface: REST/JSON over the same epmdx.v1 messages as gRPC, the server-sent-events
// watch, health endpoints, Prometheus metrics, the OpenAPI document and the static web page.
//
// Threads: one event loop (Boost.Asio + Beast) of its own, never the epmd listener's. Idle
// keep-alive clients and SSE streams cost a socket and a small object each, not a thread;
// one registry subscription wakes every stream, and each change is encoded once for all.

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>

#include "server/api/encoded_events.h"
#include "server/api/service.h"
#include "server/http/connection.h"
#include "server/http/router.h"
#include "server/http/sse_stream.h"

namespace epmdx::http {

struct HttpOptions {
  std::string listen = "127.0.0.1:4371";  // HOST:PORT; port 0 picks one.
  size_t max_connections = 4096;          // Beyond: 503 and close.
  RequestLimits limits;
  RouterOptions router;
  // Host names accepted in the Host header besides the bound address; "*" accepts any.
  // Empty: loopback names when bound to loopback, anything otherwise.
  std::vector<std::string> allowed_hosts;
};

class HttpServer final : public ConnectionHost {
 public:
  HttpServer(api::Service& api, HttpOptions options, DaemonStatus status);
  ~HttpServer() override;

  /// Binds (never with SO_REUSEPORT) and starts serving. @return an error message.
  std::optional<std::string> start();
  /// Ends every SSE stream (readiness already reports draining).
  void beginDrain();
  /// Stops accepting, closes every connection and joins the event loop's thread.
  void stop();
  uint16_t port() const { return port_; }

 private:
  void accept();
  void wakeStreams();
  void tick();
  RouteResult route(const HttpRequest& req) override;
  void startSse(beast::tcp_stream stream, SseStart start) override;
  void connectionClosed() override { --connections_; }
  const RequestLimits& limits() const override { return options_.limits; }

  api::Service& api_;
  HttpOptions options_;
  DaemonStatus status_;
  // Event loop only; declared before io_ because handlers destroyed with it count out.
  size_t connections_ = 0;
  bool draining_ = false;
  asio::io_context io_{1};
  tcp::acceptor acceptor_{io_};
  asio::steady_timer ticker_{io_};
  std::optional<Router> router_;
  api::EncodedEvents encoded_{api_.registry()};
  std::thread thread_;
  uint16_t port_ = 0;
  registry::WatchPtr subscription_;  // One wake-up for every stream.
  std::atomic<bool> wake_posted_{false};
  std::unordered_map<SseStream*, std::shared_ptr<SseStream>> streams_;  // Event loop only.
};

}  // namespace epmdx::http
