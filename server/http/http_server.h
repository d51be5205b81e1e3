#pragma once

// The HTTP surface (cpp-httplib): REST/JSON over the same epmdx.v1 messages as gRPC, the
// server-sent-events watch, health endpoints, Prometheus metrics, the OpenAPI document and
// the static web page. Routes translate; the registry decides.
//
// Threads: httplib's own pool. Each open SSE stream holds one worker thread, so the pool is
// sized max_watchers + a few, and streams beyond max_watchers get 503.

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "server/api/auth.h"
#include "server/epmd/metrics.h"
#include "server/registry/registry.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace epmdx::http {

class SseStream;

struct HttpOptions {
  std::string listen = "127.0.0.1:4371";  // HOST:PORT; port 0 picks one.
  size_t max_watchers = 1024;
  bool anonymous_read = true;  // Reads without a token (the page); a bad token still fails.
  std::string web_root;        // Serve web/ from here instead of the embedded copy.
  std::chrono::milliseconds heartbeat{15000};
  std::string version;
};

/// What the HTTP surface reports about the rest of the daemon.
struct DaemonStatus {
  std::function<bool()> epmd_listening;
  std::function<bool()> draining;
  std::function<size_t()> grpc_watchers;
  const epmd::Metrics* epmd_metrics = nullptr;
};

class HttpServer {
 public:
  HttpServer(registry::Registry& registry, const api::TokenStore& tokens, HttpOptions options,
             DaemonStatus status);
  ~HttpServer();

  /// Binds and starts serving. @return an error message on failure.
  std::optional<std::string> start();
  /// Ends every SSE stream (readiness already reports draining).
  void beginDrain();
  /// Stops accepting and ends the streams; returns at once.
  void stop();
  /// Waits for the workers (an idle keep-alive connection ends by its timeout).
  void join();
  uint16_t port() const { return port_; }
  size_t sseWatchers() const { return sse_watchers_.load(); }

 private:
  void routes();
  bool authorize(const httplib::Request& req, httplib::Response& res, api::Scope scope,
                 api::Principal* who);
  void serveAsset(const std::string& file, httplib::Response& res);
  void watch(const httplib::Request& req, httplib::Response& res);

  registry::Registry& registry_;
  const api::TokenStore& tokens_;
  HttpOptions options_;
  DaemonStatus status_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  uint16_t port_ = 0;
  std::atomic<size_t> sse_watchers_{0};
  std::mutex streams_mu_;
  std::set<SseStream*> streams_;  // Guarded by streams_mu_.
  bool draining_ = false;         // Guarded by streams_mu_.
};

}  // namespace epmdx::http
