#pragma once

// The routes of the HTTP surface as a pure function: a parsed request in, a response (or
// "start an SSE stream") out. No sockets here, so every route is testable and the
// connection code stays about bytes and timeouts. Use cases are api::Service calls. What the
// routes are (path, methods, scope, offload, handler) is one table in router.cc; 405 and
// Allow, OPTIONS, authorization and the offload decision follow from it. Every error, the
// use cases' and the HTTP layer's own, is rendered by errorResponse().

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "server/api/service.h"
#include "server/http/target.h"

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

/// The errors the HTTP layer raises itself (framing, limits, methods, capacity), besides the
/// use cases' api::Error. Each has one row in the table of router.cc: its HTTP status, the
/// api code its ErrorBody names, and its Retry-After.
enum class HttpError {
  BadRequest,          // 400: a malformed target, escape, parameter or framing.
  MethodNotAllowed,    // 405 (with Allow).
  BodyTooLarge,        // 413: over RequestLimits::body_bytes.
  HeadersTooLarge,     // 431: over RequestLimits::header_bytes or header_count.
  TooManyConnections,  // 503: HttpOptions::max_connections open.
  Busy,                // 503: the workers' queue is full (HttpOptions::worker_budget).
  ShuttingDown,        // 503: draining.
};

/// The one way an error becomes a response, for every error the HTTP surface answers: an
/// ErrorBody in JSON (docs/openapi.json) whose `code` is the HTTP status. Use-case errors
/// take the status their code maps to (api::httpStatus).
HttpResponse errorResponse(const api::Error& e);
HttpResponse errorResponse(HttpError kind, std::string message);

/// "16 KiB", "1000 bytes": a configured size in a message.
std::string sizeText(size_t bytes);

struct Route;  // A row of the route table (router.cc).

/// A request resolved against the route table once: the target parsed, the route named
/// (path and method). The offload decision, the answer and the drain check all read this.
struct Resolved {
  std::optional<Target> target;       // nullopt: a malformed target (400).
  const Route* path_route = nullptr;  // The first route of this path; nullptr: 404.
  const Route* route = nullptr;       // The route of this path and method; nullptr: 405.
  bool opens_stream = false;          // The watch's path, any method: refused while draining.
};

class Router {
 public:
  Router(api::Service& api, RouterOptions options, DaemonStatus status);

  Resolved resolve(const HttpRequest& req) const;
  RouteResult handle(const HttpRequest& req, const Resolved& resolved, size_t http_connections);
  RouteResult handle(const HttpRequest& req, size_t http_connections) {
    return handle(req, resolve(req), http_connections);
  }
  /// When the answer grows with the registry (built on a worker, then): what it will
  /// serialize, in nodes or events plus `request_cost`. nullopt: answered on the loop.
  std::optional<size_t> offloadCost(const Resolved& resolved, size_t request_cost) const;

 private:
  friend struct Route;
  /// What a route's handler gets: the request, its parsed query, the path's name (decoded)
  /// and who asked (once authorized for the route's scope).
  struct Call {
    const HttpRequest& req;
    const std::map<std::string, std::string>& query;
    std::string_view path;  // Still percent-encoded.
    std::string name;
    api::Principal who;
    size_t http_connections = 0;
  };

  RouteResult listNodes(const Call& c);
  RouteResult getNode(const Call& c);
  RouteResult evict(const Call& c);
  RouteResult listClusters(const Call& c);
  RouteResult listSources(const Call& c);
  RouteResult listHolds(const Call& c);
  RouteResult liftHold(const Call& c);
  RouteResult events(const Call& c);
  RouteResult watch(const Call& c);
  RouteResult livez(const Call& c);
  RouteResult readyz(const Call& c);
  RouteResult metrics(const Call& c);
  RouteResult openApi(const Call& c);
  RouteResult page(const Call& c);

  /// The route table, in match order.
  static const std::vector<Route>& routes();
  HttpResponse options(const Resolved& resolved) const;
  HttpResponse methodNotAllowed(const HttpRequest& req, const Resolved& resolved) const;
  Result<api::Principal, api::Error> authorize(const HttpRequest& req, api::Scope scope,
                                               std::string_view access_token) const;
  bool hostAllowed(const HttpRequest& req) const;
  HttpResponse asset(const std::string& file) const;

  api::Service& api_;
  RouterOptions options_;
  DaemonStatus status_;
};

}  // namespace epmdx::http
