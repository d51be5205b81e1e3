#pragma once

// The HTTP surface: REST/JSON over the same epmdx.v1 messages as gRPC, the server-sent-events
// watch, health endpoints, Prometheus metrics, the OpenAPI document and the static web page.
//
// Threads: one event loop (Boost.Asio + Beast) of its own, never the epmd listener's. Idle
// keep-alive clients and SSE streams cost a socket and a small object each, not a thread;
// one registry subscription wakes every stream, and each change is encoded once for all.
// The answers that grow with the registry (GET /v1/nodes, /v1/events, /v1/holds, a watch's
// initial state) are built on a worker thread and written by the loop, so probes and small
// requests never wait behind a 15,000-node serialization; the rest is answered on the loop.

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
#include "server/http/worker_pool.h"

namespace epmdx::http {

struct HttpOptions {
  std::string listen = "127.0.0.1:4371";  // HOST:PORT; port 0 picks one.
  size_t max_connections = 4096;          // Beyond: 503 and close.
  RequestLimits limits;
  RouterOptions router;
  // Host names accepted in the Host header besides the bound address; "*" accepts any.
  // Empty: loopback names when bound to loopback, anything otherwise.
  std::vector<std::string> allowed_hosts;
  // Threads that build the big answers, and how much work may wait for one, in nodes (or
  // events) to serialize, each request counting kRequestCost more: 32 lists of 15,000 names,
  // or 1,000 watches' initial states of up to ~430 names. Beyond: 503 with Retry-After at
  // once (each waiting request holds its connection).
  static constexpr size_t kRequestCost = 50;  // Routing, auth, the snapshot, the write.
  size_t workers = 1;
  size_t worker_budget = 32 * (15000 + kRequestCost);
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
  void route(const HttpRequest& req, AnswerFn done) override;
  /// Answers 503 on a socket the server has no room for (or while draining), and closes it.
  void refuse(tcp::socket socket) const;
  void startSse(beast::tcp_stream stream, SseStart start,
                std::vector<api::EncodedEvents::Bytes> initial) override;
  ConnectionList::iterator connectionOpened(Connection* c) override {
    return open_.insert(open_.end(), c);
  }
  void connectionClosed(ConnectionList::iterator it) override {
    open_.erase(it);
    --connections_;
  }
  void connectionHandedOver(ConnectionList::iterator it) override { open_.erase(it); }
  /// Closes the oldest idle connection to make room. @return false if none is idle.
  bool shedIdle();
  const RequestLimits& limits() const override { return options_.limits; }

  api::Service& api_;
  HttpOptions options_;
  DaemonStatus status_;
  // Event loop only; declared before io_ because handlers destroyed with it count out.
  size_t connections_ = 0;  // Open connections and SSE streams.
  ConnectionList open_;     // Connections (not streams), oldest first.
  bool draining_ = false;
  asio::io_context io_{1};
  tcp::acceptor acceptor_{io_};
  asio::steady_timer ticker_{io_};
  std::optional<Router> router_;
  api::EncodedEvents encoded_{api_.clusterNames()};
  std::thread thread_;
  uint16_t port_ = 0;
  registry::WatchPtr subscription_;  // One wake-up for every stream.
  std::atomic<bool> wake_posted_{false};
  std::atomic<uint64_t> busy_{0};  // Big requests refused: the worker's queue was full.
  std::unordered_map<SseStream*, std::shared_ptr<SseStream>> streams_;  // Event loop only.
  // After io_ and router_: stopped (its jobs, which hold connections, gone) before either.
  WorkerPool workers_{options_.workers, options_.worker_budget};
};

}  // namespace epmdx::http
