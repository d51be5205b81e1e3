#include "server/http/router.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "server/api/encoded_events.h"
#include "server/api/json.h"
#include "server/common/log.h"
#include "server/http/assets.h"
#include "server/http/metrics_text.h"
#include "server/http/target.h"

namespace epmdx::http {
namespace {

constexpr const char* kJson = "application/json";
constexpr const char* kText = "text/plain; charset=utf-8";

using Query = std::map<std::string, std::string>;

HttpResponse ok(std::string body, const char* type) {
  return HttpResponse{200, type, std::move(body), {}};
}

HttpResponse badRequest(std::string message) {
  return errorResponse(HttpError::BadRequest, std::move(message));
}

/// A query parameter's value; "" when absent.
std::string_view param(const Query& query, const char* key) {
  auto it = query.find(key);
  return it == query.end() ? std::string_view() : std::string_view(it->second);
}

/// A numeric query parameter: nullopt when absent, an error (`must_be`) when not a number.
Result<std::optional<uint64_t>, api::Error> numberParam(const Query& query, const char* key,
                                                        std::string must_be) {
  auto it = query.find(key);
  if (it == query.end()) {
    return std::optional<uint64_t>();
  }
  auto n = parseNumber(it->second);
  if (!n) {
    return makeErr(api::Error{api::Code::InvalidArgument, std::move(must_be), {}});
  }
  return std::optional<uint64_t>(*n);
}

/// A number as the uint32 a message field holds: larger ones as the largest, so that the
/// service refuses them with its own bound.
uint32_t clampToU32(uint64_t n) {
  return static_cast<uint32_t>(std::min<uint64_t>(n, UINT32_MAX));
}

/// A JSON body as `message`; an empty body leaves it as it is.
template <class Message>
bool parseBody(std::string_view body, Message& message) {
  if (body.empty()) {
    return true;
  }
  google::protobuf::util::JsonParseOptions opts;
  return google::protobuf::util::JsonStringToMessage(std::string(body), &message, opts).ok();
}

template <class T>
RouteResult answer(const Result<T, api::Error>& r) {
  if (!r.ok()) {
    return errorResponse(r.error());
  }
  return ok(api::toJson(r.value()), kJson);
}

std::string contentType(std::string_view file) {
  auto ends = [file](std::string_view suffix) {
    return file.size() >= suffix.size() && file.substr(file.size() - suffix.size()) == suffix;
  };
  if (ends(".html")) {
    return "text/html; charset=utf-8";
  }
  if (ends(".js")) {
    return "text/javascript; charset=utf-8";
  }
  if (ends(".css")) {
    return "text/css; charset=utf-8";
  }
  if (ends(".json")) {
    return kJson;
  }
  if (ends(".svg")) {
    return "image/svg+xml";
  }
  return "application/octet-stream";
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

/// The host part of a Host header: "[::1]:4371" -> "[::1]", "Example.com:80" -> "example.com".
std::string hostName(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    const size_t end = host.find(']');
    return lower(host.substr(0, end == std::string_view::npos ? host.size() : end + 1));
  }
  return lower(host.substr(0, host.find(':')));
}

// A file of the page (web/ in the repository), as compiled in: the page's files are listed
// once, in server/CMakeLists.txt, and --web-root serves only those names.
bool isPageFile(std::string_view path) {
  for (const auto& [file, bytes] : embeddedAssets()) {
    if (file.size() > 3 && file.substr(0, 3) == "web" && file.substr(3) == path) {
      return true;
    }
  }
  return false;
}

/// A row of the HTTP layer's own errors: the status, the api code its ErrorBody names, and
/// the Retry-After it promises ("" for none).
struct HttpErrorRow {
  int status;
  api::Code code;
  const char* retry_after;
};

// gRPC has no code for a wrong method or an oversized request, so the ErrorBody names the
// nearest one (INVALID_ARGUMENT, RESOURCE_EXHAUSTED) while the HTTP status says exactly what
// went wrong: these statuses are the table's, not api::httpStatus's.
HttpErrorRow rowOf(HttpError kind) {
  switch (kind) {
    case HttpError::BadRequest:
      return {400, api::Code::InvalidArgument, ""};
    case HttpError::MethodNotAllowed:
      return {405, api::Code::InvalidArgument, ""};
    case HttpError::BodyTooLarge:
      return {413, api::Code::ResourceExhausted, ""};
    case HttpError::HeadersTooLarge:
      return {431, api::Code::ResourceExhausted, ""};
    case HttpError::TooManyConnections:
      return {503, api::Code::Unavailable, "5"};
    case HttpError::Busy:
      return {503, api::Code::Unavailable, "1"};
    case HttpError::ShuttingDown:
      return {503, api::Code::Unavailable, ""};
  }
  return {500, api::Code::Internal, ""};
}

HttpResponse render(int status, const api::Error& e, std::string_view retry_after) {
  HttpResponse res{status, kJson, api::errorJson(e, status), {}};
  if (e.code == api::Code::Unauthenticated) {
    res.headers.emplace_back("WWW-Authenticate", "Bearer");
  }
  if (!retry_after.empty()) {
    res.headers.emplace_back("Retry-After", std::string(retry_after));
  }
  return res;
}

}  // namespace

HttpResponse errorResponse(const api::Error& e) {
  // Too many watch streams: worth another try in a few seconds.
  return render(api::httpStatus(e.code), e, e.code == api::Code::ResourceExhausted ? "5" : "");
}

HttpResponse errorResponse(HttpError kind, std::string message) {
  const HttpErrorRow row = rowOf(kind);
  return render(row.status, api::Error{row.code, std::move(message), {}}, row.retry_after);
}

std::string sizeText(size_t bytes) {
  if (bytes >= 1024 && bytes % 1024 == 0) {
    return std::to_string(bytes / 1024) + " KiB";
  }
  return std::to_string(bytes) + " bytes";
}

enum class PathKind : uint8_t {
  Exact,  // The path itself.
  Named,  // The path, then a (percent-encoded) name: "/v1/nodes/NAME".
  Page,   // "/" or a file of the embedded page.
};
enum class Method : uint8_t { Get, Delete };  // Get answers HEAD too.
enum class Access : uint8_t { Public, Read, Evict };
enum class Offload : uint8_t { No, Nodes, Holds, Events, InitialState };

/// A route: a path and one method, who may call it, whether its answer is built on a worker,
/// and what answers it. The rows of one path are adjacent; their methods make its Allow.
struct Route {
  PathKind kind;
  std::string_view path;
  Method method;
  Access access;
  Offload offload;
  RouteResult (Router::*handler)(const Router::Call&);

  bool matchesPath(std::string_view p) const {
    switch (kind) {
      case PathKind::Exact:
        return p == path;
      case PathKind::Named:
        return p.size() > path.size() && p.substr(0, path.size()) == path;
      case PathKind::Page:
        return p == "/" || isPageFile(p);
    }
    return false;
  }
  bool matchesMethod(std::string_view m) const {
    return method == Method::Get ? m == "GET" || m == "HEAD" : m == "DELETE";
  }
  bool samePath(const Route& other) const { return kind == other.kind && path == other.path; }
};

const std::vector<Route>& Router::routes() {
  using P = PathKind;
  using M = Method;
  using A = Access;
  using O = Offload;
  // The documented routes (docs/openapi.json), in match order.
  static const std::vector<Route> table = {
      {P::Exact, "/v1/nodes", M::Get, A::Read, O::Nodes, &Router::listNodes},
      {P::Named, "/v1/nodes/", M::Get, A::Read, O::No, &Router::getNode},
      {P::Named, "/v1/nodes/", M::Delete, A::Evict, O::No, &Router::evict},
      {P::Exact, "/v1/watch", M::Get, A::Read, O::InitialState, &Router::watch},
      {P::Exact, "/v1/clusters", M::Get, A::Read, O::No, &Router::listClusters},
      {P::Exact, "/v1/sources", M::Get, A::Read, O::No, &Router::listSources},
      {P::Exact, "/v1/holds", M::Get, A::Read, O::Holds, &Router::listHolds},
      {P::Named, "/v1/holds/", M::Delete, A::Evict, O::No, &Router::liftHold},
      {P::Exact, "/v1/events", M::Get, A::Read, O::Events, &Router::events},
      {P::Exact, "/livez", M::Get, A::Public, O::No, &Router::livez},
      {P::Exact, "/readyz", M::Get, A::Public, O::No, &Router::readyz},
      {P::Exact, "/metrics", M::Get, A::Public, O::No, &Router::metrics},
      {P::Exact, "/v1/openapi.json", M::Get, A::Public, O::No, &Router::openApi},
      {P::Page, "", M::Get, A::Public, O::No, &Router::page},
  };
  return table;
}

Router::Router(api::Service& api, RouterOptions options, DaemonStatus status)
    : api_(api), options_(std::move(options)), status_(std::move(status)) {}

Resolved Router::resolve(const HttpRequest& req) const {
  Resolved r;
  r.opens_stream = req.target.substr(0, req.target.find('?')) == "/v1/watch";
  r.target = parseTarget(req.target);
  if (!r.target) {
    return r;
  }
  for (const Route& route : routes()) {
    if (!route.matchesPath(r.target->path)) {
      continue;
    }
    r.path_route = r.path_route ? r.path_route : &route;
    if (route.matchesMethod(req.method)) {
      r.route = &route;
      break;
    }
  }
  return r;
}

std::optional<size_t> Router::offloadCost(const Resolved& resolved, size_t request_cost) const {
  if (!resolved.route) {
    return std::nullopt;  // Answered at once: 400, 404, 405, OPTIONS.
  }
  const auto& query = resolved.target->query;
  // The registry's size now, not a count of requests: a thousand initial states of 20
  // names are less work than one of 15,000.
  switch (resolved.route->offload) {
    case Offload::No:
      return std::nullopt;
    case Offload::InitialState:
      if (param(query, "initial") != "true" && param(query, "initial") != "1") {
        return std::nullopt;  // A watch is cheap to open unless it starts with the state.
      }
      return request_cost + api_.stats().nodes;
    case Offload::Nodes:
      return request_cost + api_.stats().nodes;
    case Offload::Holds:
      return request_cost + api_.stats().holds;
    case Offload::Events: {
      const std::string_view limit = param(query, "limit");
      size_t n = api::kDefaultEventsLimit;
      if (!limit.empty() && limit.size() <= 6) {
        n = parseNumber(limit).value_or(n);
      }
      return request_cost + std::min<size_t>(n, api::kMaxEventsLimit);
    }
  }
  return std::nullopt;
}

bool Router::hostAllowed(const HttpRequest& req) const {
  // No Host header at all cannot come from a browser (every browser sends one, and DNS
  // rebinding needs one naming the attacker's domain), while health checkers send exactly
  // that (HAProxy's `option httpchk` is HTTP/1.0 without Host). A Host that is present but
  // empty or foreign is still refused.
  if (options_.allowed_hosts.empty() || !req.has_host) {
    return true;
  }
  const std::string name = hostName(req.host);
  return std::find(options_.allowed_hosts.begin(), options_.allowed_hosts.end(), name) !=
         options_.allowed_hosts.end();
}

Result<api::Principal, api::Error> Router::authorize(const HttpRequest& req, api::Scope scope,
                                                     std::string_view access_token) const {
  std::string header(req.authorization);
  if (header.empty() && scope == api::Scope::Read && !access_token.empty()) {
    // EventSource sends no headers. Reads only: a token in a URL must never evict.
    header = "Bearer " + std::string(access_token);
  }
  if (header.empty() && scope == api::Scope::Read && options_.anonymous_read) {
    return api::Principal{"anonymous", true, false};
  }
  return api_.authenticate(header, scope);
}

RouteResult Router::handle(const HttpRequest& req, const Resolved& resolved,
                           size_t http_connections) {
  if (!hostAllowed(req)) {
    return errorResponse({api::Code::PermissionDenied,
                          "Host \"" + log::printable(req.host) +
                              "\" is not allowed here (--http-allowed-hosts): this port serves " +
                              "loopback names only",
                          {}});
  }
  if (!resolved.target) {
    return badRequest("malformed request target");
  }
  const std::string_view path = resolved.target->path;
  if (!resolved.path_route) {
    return errorResponse({api::Code::NotFound, "no route " + log::printable(path), {}});
  }
  if (req.method == "OPTIONS") {
    return options(resolved);
  }
  if (!resolved.route) {
    return methodNotAllowed(req, resolved);
  }
  const Route& route = *resolved.route;
  Call call{req, resolved.target->query, path, {}, {}, http_connections};
  if (route.kind == PathKind::Named) {
    auto name = percentDecode(path.substr(route.path.size()), false);
    if (!name) {
      return badRequest("malformed node name escape");
    }
    call.name = std::move(*name);
  }
  if (route.access != Access::Public) {
    // A token in the URL (EventSource sends no headers) for reads only: never for evictions.
    const bool read = route.access == Access::Read;
    auto who = authorize(req, read ? api::Scope::Read : api::Scope::Evict,
                         read ? param(call.query, "access_token") : std::string_view());
    if (!who.ok()) {
      return errorResponse(who.error());
    }
    call.who = std::move(who.value());
  }
  return (this->*route.handler)(call);
}

namespace {

/// The methods of the resolved path's routes, as Allow names them.
std::string allowOf(const Resolved& resolved, const std::vector<Route>& routes) {
  std::string allow;
  for (const Route& route : routes) {
    if (route.samePath(*resolved.path_route)) {
      allow += std::string(allow.empty() ? "" : ", ") +
               (route.method == Method::Get ? "GET, HEAD" : "DELETE");
    }
  }
  return allow;
}

}  // namespace

HttpResponse Router::options(const Resolved& resolved) const {
  // What the route allows, nothing more: HAProxy's default health check is
  // `OPTIONS / HTTP/1.0` and wants a 2xx. No CORS headers: a cross-origin browser
  // preflight still fails, as before.
  HttpResponse res{200, kText, "", {}};
  res.headers.emplace_back("Allow", allowOf(resolved, routes()));
  return res;
}

HttpResponse Router::methodNotAllowed(const HttpRequest& req, const Resolved& resolved) const {
  HttpResponse res = errorResponse(HttpError::MethodNotAllowed,
                                   "method " + log::printable(req.method) + " is not allowed on " +
                                       log::printable(resolved.target->path));
  res.headers.emplace_back("Allow", allowOf(resolved, routes()));
  return res;
}

RouteResult Router::listNodes(const Call& c) {
  const std::string_view partial = param(c.query, "partial");
  if (!partial.empty() && partial != "abort" && partial != "warn") {
    return badRequest("partial must be \"abort\" or \"warn\"");
  }
  return answer(api_.list(param(c.query, "cluster"), param(c.query, "source"), partial == "abort"));
}

RouteResult Router::getNode(const Call& c) {
  return answer(api_.get(c.name, param(c.query, "cluster"), param(c.query, "source")));
}

RouteResult Router::listSources(const Call&) {
  auto sources = api_.listSources();
  if (!sources.ok() && sources.error().code == api::Code::Unimplemented) {
    // A daemon has no sources: the path does not exist here (the page tells them apart so).
    return errorResponse(api::Error{api::Code::NotFound, sources.error().message, {}});
  }
  return answer(sources);
}

RouteResult Router::listClusters(const Call&) {
  return ok(api::toJson(api_.listClusters()), kJson);
}

RouteResult Router::listHolds(const Call& c) {
  return answer(api_.listHolds(param(c.query, "cluster"), param(c.query, "source")));
}

RouteResult Router::evict(const Call& c) {
  v1::EvictNodeRequest ev;
  if (!parseBody(c.req.body, ev)) {
    return badRequest(
        "the body must be an EvictNodeRequest in JSON: "
        "{\"registrationId\": \"ID\", \"reason\": \"TEXT\"}");
  }
  ev.set_name(c.name);
  auto id = numberParam(c.query, "registration_id", "registration_id must be a number");
  // Its bound (a week) is the service's, for gRPC and HTTP alike.
  auto seconds = numberParam(c.query, "hold_seconds", "hold_seconds must be a number of seconds");
  for (const auto* n : {&id, &seconds}) {
    if (!n->ok()) {
      return errorResponse(n->error());
    }
  }
  if (id.value()) {
    ev.set_registration_id(*id.value());
  }
  if (c.query.count("reason")) {
    ev.set_reason(c.query.at("reason"));
  }
  if (c.query.count("cluster")) {
    ev.set_cluster(c.query.at("cluster"));
  }
  if (c.query.count("source")) {
    ev.set_source(c.query.at("source"));
  }
  if (seconds.value()) {
    ev.set_hold_seconds(clampToU32(*seconds.value()));
  }
  return answer(api_.evict(c.who, c.req.peer, ev));
}

RouteResult Router::liftHold(const Call& c) {
  v1::LiftHoldRequest lift;
  if (!parseBody(c.req.body, lift)) {
    return badRequest("the body must be a LiftHoldRequest in JSON: {\"reason\": \"TEXT\"}");
  }
  lift.set_name(c.name);
  if (c.query.count("reason")) {
    lift.set_reason(c.query.at("reason"));
  }
  if (c.query.count("cluster")) {
    lift.set_cluster(c.query.at("cluster"));
  }
  if (c.query.count("source")) {
    lift.set_source(c.query.at("source"));
  }
  return answer(api_.liftHold(c.who, c.req.peer, lift));
}

RouteResult Router::events(const Call& c) {
  v1::ListEventsRequest request;
  request.set_cluster(std::string(param(c.query, "cluster")));
  request.set_source(std::string(param(c.query, "source")));
  auto limit =
      numberParam(c.query, "limit",
                  "limit must be a number (0: " + std::to_string(api::kDefaultEventsLimit) +
                      ", at most " + std::to_string(api::kMaxEventsLimit) + ")");
  auto after = numberParam(c.query, "after_revision", "after_revision must be a revision");
  for (const auto* n : {&limit, &after}) {
    if (!n->ok()) {
      return errorResponse(n->error());
    }
  }
  if (limit.value()) {
    // Above the maximum the service refuses it, with the number as given when it fits.
    request.set_limit(clampToU32(*limit.value()));
  }
  if (after.value()) {
    request.set_after_revision(*after.value());
  }
  return answer(api_.listEvents(request));
}

namespace {

/// The answer to a watch whose revision is gone (or unknown): an SSE stream that says
/// "resync" and ends, so EventSource clients get the news as an event, not a failed
/// reconnect.
HttpResponse resyncStream(const api::Error& e) {
  HttpResponse res = ok("retry: 1000\n\n", "text/event-stream");
  api::Error gone = e;
  gone.code = api::Code::OutOfRange;
  res.body += api::sseFrame("resync", e.window->current, api::errorJson(gone));
  res.headers.emplace_back("Cache-Control", "no-cache");
  return res;
}

}  // namespace

RouteResult Router::watch(const Call& c) {
  api::WatchParams params;
  params.initial = param(c.query, "initial") == "true" || param(c.query, "initial") == "1";
  params.cluster = std::string(param(c.query, "cluster"));
  params.source = std::string(param(c.query, "source"));
  const std::string_view since =
      c.query.count("since") ? param(c.query, "since") : c.req.last_event_id;
  if (!since.empty()) {
    auto rev = parseNumber(since);
    if (!rev) {
      return badRequest("since / Last-Event-ID must be a revision");
    }
    params.after = *rev;
    params.initial = false;  // Resuming: the client has the state up to `since`.
  }
  auto ms = numberParam(c.query, "heartbeat_ms", "");
  if (!ms.ok() || (ms.value() && *ms.value() < 100)) {
    return badRequest("heartbeat_ms must be a number >= 100");
  }
  const auto heartbeat = ms.value() ? std::chrono::milliseconds(*ms.value()) : options_.heartbeat;
  auto opened = api_.openWatch(api::Surface::Sse, params, {});
  if (!opened.ok()) {
    return opened.error().window ? resyncStream(opened.error()) : errorResponse(opened.error());
  }
  return SseStart{std::move(opened.value()), heartbeat};
}

RouteResult Router::livez(const Call&) {
  return ok("ok\n", kText);
}

RouteResult Router::readyz(const Call& c) {
  const bool listening = status_.epmd_listening();
  const bool draining = status_.draining();
  const bool ready = listening && !draining;
  HttpResponse res = ok(ready ? "ok\n" : "not ready\n", kText);
  res.status = ready ? 200 : 503;
  if (c.query.count("verbose") == 0) {
    return res;
  }
  std::string& body = res.body;
  body = std::string(listening ? "[+]" : "[-]") + "epmd-listener " +
         (listening ? "ok" : "failed: the epmd port is not bound") + "\n";
  body += std::string(!draining ? "[+]" : "[-]") + "not-draining " +
          (!draining ? "ok" : "failed: shutting down") + "\n";
  if (status_.surfaces) {
    // Informational: an admin surface that is off does not make epmd unready.
    for (const auto& s : status_.surfaces()) {
      body += "[" + std::string(s.up ? "+" : "-") + "]" + s.name + " " + (s.up ? "ok" : "off") +
              (s.detail.empty() ? "" : ": " + s.detail) + "\n";
    }
  }
  body += ready ? "readyz check passed\n" : "readyz check failed\n";
  return res;
}

RouteResult Router::metrics(const Call& c) {
  MetricsInput in;
  in.registry = api_.stats();
  in.cluster_names = api_.clusterLabels();
  in.grpc_watchers = api_.watchers(api::Surface::Grpc);
  in.sse_watchers = api_.watchers(api::Surface::Sse);
  in.grpc_cut = api_.cut(api::Surface::Grpc);
  in.sse_cut = api_.cut(api::Surface::Sse);
  in.http_connections = c.http_connections;
  in.ready = status_.epmd_listening() && !status_.draining();
  in.version = options_.version;
  HttpResponse res = ok({}, "text/plain; version=0.0.4; charset=utf-8");
  renderMetrics(in, res.body);
  if (status_.metrics) {
    status_.metrics(res.body);
  }
  return res;
}

RouteResult Router::openApi(const Call&) {
  return asset("docs/openapi.json");
}

RouteResult Router::page(const Call& c) {
  return asset(c.path == "/" ? "web/index.html" : "web" + std::string(c.path));
}

HttpResponse Router::asset(const std::string& file) const {
  std::string body;
  bool found = false;
  if (!options_.web_root.empty() && file.rfind("web/", 0) == 0) {
    std::ifstream in(options_.web_root + "/" + file.substr(4), std::ios::binary);
    if (in) {
      std::stringstream ss;
      ss << in.rdbuf();
      body = ss.str();
      found = true;
    }
  }
  for (const auto& [path, bytes] : embeddedAssets()) {
    if (!found && path == file) {
      body.assign(bytes);
      found = true;
    }
  }
  if (!found) {
    return errorResponse({api::Code::NotFound, "no such page", {}});
  }
  HttpResponse res = ok(std::move(body), contentType(file).c_str());
  res.headers.emplace_back("X-Content-Type-Options", "nosniff");
  res.headers.emplace_back("Cache-Control", "no-cache");
  if (file.rfind("web/", 0) == 0) {
    res.headers.emplace_back("Content-Security-Policy",
                             "default-src 'self'; connect-src 'self'; img-src 'self' data:");
  }
  return res;
}

}  // namespace epmdx::http
