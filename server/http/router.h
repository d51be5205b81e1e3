#pragma once

// The routes of the HTTP surface as a pure function: a parsed request in, a response (or
// "start an SSE stream") out. No sockets here, so every route is testable and the
// connection code stays about bytes and timeouts. Use cases are api::Service calls; errors
// are api::Error rendered as an ErrorBody with the matching HTTP status.

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "server/api/service.h"

namespace epmdx::http {

struct RouterOptions {
  bool anonymous_read = true;  // Reads without a token (the page); a bad token still fails.
  std::string web_root;        // Serve web/ from here instead of the embedded copy.
  std::chrono::milliseconds heartbeat{15000};
  std::string version;
  // Host header values accepted (lower case, without port); empty: any. A loopback bind
  // accepts only loopback names by default, so a web page elsewhere cannot read the API
  // through DNS rebinding.
  std::vector<std::string> allowed_hosts;
};

/// One admin surface's state, for /readyz?verbose ("grpc off: ..." when it could not bind).
struct SurfaceState {
  std::string name;
  bool up = false;
  std::string detail;
};

/// What the HTTP surface reports about the rest of the daemon.
struct DaemonStatus {
  std::function<bool()> epmd_listening;
  std::function<bool()> draining;
  std::function<std::vector<SurfaceState>()> surfaces;  // May be empty.
  std::function<void(std::string&)> metrics;            // Appends more families. May be empty.
};

struct HttpRequest {
  std::string_view method;
  std::string_view target;
  std::string_view host;
  bool has_host = true;  // False: no Host header at all (HTTP/1.0 health checkers).
  std::string_view authorization;
  std::string_view last_event_id;
  std::string_view body;
  std::string peer;  // "127.0.0.1:50412", for the actor of an eviction.
};

struct HttpResponse {
  int status = 200;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

/// GET /v1/watch accepted: the connection becomes an SSE stream of this watch.
struct SseStart {
  api::OpenedWatch watch;
  std::chrono::milliseconds heartbeat;
};

using RouteResult = std::variant<HttpResponse, SseStart>;

class Router {
 public:
  Router(api::Service& api, RouterOptions options, DaemonStatus status);

  RouteResult handle(const HttpRequest& req, size_t http_connections);

  /// An ErrorBody response; `http_status` overrides the status the code maps to (405).
  static HttpResponse error(const api::Error& e, int http_status = 0);

 private:
  Result<api::Principal, api::Error> authorize(const HttpRequest& req, api::Scope scope,
                                               std::string_view access_token) const;
  bool hostAllowed(const HttpRequest& req) const;
  RouteResult watch(const HttpRequest& req, const std::map<std::string, std::string>& query);
  HttpResponse events(const HttpRequest& req, const std::map<std::string, std::string>& query);
  HttpResponse liftHold(const HttpRequest& req, std::string_view name,
                        const std::map<std::string, std::string>& query);
  HttpResponse evict(const HttpRequest& req, std::string_view name,
                     const std::map<std::string, std::string>& query);
  HttpResponse readyz(bool verbose) const;
  HttpResponse metrics(size_t http_connections) const;
  HttpResponse asset(const std::string& file) const;

  api::Service& api_;
  RouterOptions options_;
  DaemonStatus status_;
};

}  // namespace epmdx::http
