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

HttpResponse ok(std::string body, const char* type) {
  return HttpResponse{200, type, std::move(body), {}};
}

api::Error invalid(std::string message) {
  return api::Error{api::Code::InvalidArgument, std::move(message), {}};
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

/// The route table: a path, the methods it answers (for 405's Allow), and which one.
enum class Route {
  Nodes,
  Node,
  Clusters,
  Holds,
  Hold,
  Events,
  Watch,
  Livez,
  Readyz,
  Metrics,
  OpenApi,
  Asset,
  None
};

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

Route match(std::string_view path) {
  if (path == "/v1/nodes") {
    return Route::Nodes;
  }
  if (path.size() > 10 && path.substr(0, 10) == "/v1/nodes/") {
    return Route::Node;
  }
  if (path == "/v1/watch") {
    return Route::Watch;
  }
  if (path == "/v1/clusters") {
    return Route::Clusters;
  }
  if (path == "/v1/holds") {
    return Route::Holds;
  }
  if (path.size() > 10 && path.substr(0, 10) == "/v1/holds/") {
    return Route::Hold;
  }
  if (path == "/v1/events") {
    return Route::Events;
  }
  if (path == "/livez") {
    return Route::Livez;
  }
  if (path == "/readyz") {
    return Route::Readyz;
  }
  if (path == "/metrics") {
    return Route::Metrics;
  }
  if (path == "/v1/openapi.json") {
    return Route::OpenApi;
  }
  if (path == "/" || isPageFile(path)) {
    return Route::Asset;
  }
  return Route::None;
}

}  // namespace

Router::Router(api::Service& api, RouterOptions options, DaemonStatus status)
    : api_(api), options_(std::move(options)), status_(std::move(status)) {}

HttpResponse Router::error(const api::Error& e, int http_status) {
  const int status = http_status != 0 ? http_status : api::httpStatus(e.code);
  HttpResponse res{status, kJson, api::errorJson(e, status), {}};
  if (e.code == api::Code::Unauthenticated) {
    res.headers.emplace_back("WWW-Authenticate", "Bearer");
  }
  if (e.code == api::Code::ResourceExhausted) {
    res.headers.emplace_back("Retry-After", "5");
  }
  return res;
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

RouteResult Router::handle(const HttpRequest& req, size_t http_connections) {
  if (!hostAllowed(req)) {
    return error({api::Code::PermissionDenied,
                  "Host \"" + log::printable(req.host) +
                      "\" is not allowed here (--http-allowed-hosts): this port serves " +
                      "loopback names only",
                  {}});
  }
  auto target = parseTarget(req.target);
  if (!target) {
    return error(invalid("malformed request target"));
  }
  const Route route = match(target->path);
  if (route == Route::None) {
    return error({api::Code::NotFound, "no route " + log::printable(target->path), {}});
  }
  const bool get = req.method == "GET" || req.method == "HEAD";
  const bool del = req.method == "DELETE";
  // The documented methods (docs/openapi.json); OPTIONS is answered on every route besides.
  const char* allow = route == Route::Node   ? "GET, HEAD, DELETE"
                      : route == Route::Hold ? "DELETE"
                                             : "GET, HEAD";
  if (req.method == "OPTIONS") {
    // What the route allows, nothing more: HAProxy's default health check is
    // `OPTIONS / HTTP/1.0` and wants a 2xx. No CORS headers: a cross-origin browser
    // preflight still fails, as before.
    HttpResponse res{200, kText, "", {}};
    res.headers.emplace_back("Allow", allow);
    return res;
  }
  if ((route == Route::Hold && !del) ||
      (!get && !((route == Route::Node || route == Route::Hold) && del))) {
    HttpResponse res = error({api::Code::InvalidArgument,
                              "method " + log::printable(req.method) + " is not allowed on " +
                                  log::printable(target->path),
                              {}},
                             405);
    res.headers.emplace_back("Allow", allow);
    return res;
  }
  const auto& query = target->query;
  auto param = [&query](const char* key) -> std::string_view {
    auto it = query.find(key);
    return it == query.end() ? std::string_view() : std::string_view(it->second);
  };
  switch (route) {
    case Route::Nodes: {
      if (auto who = authorize(req, api::Scope::Read, param("access_token")); !who.ok()) {
        return error(who.error());
      }
      auto list = api_.list(param("cluster"));
      if (!list.ok()) {
        return error(list.error());
      }
      return ok(api::toJson(list.value()), kJson);
    }
    case Route::Clusters: {
      if (auto who = authorize(req, api::Scope::Read, param("access_token")); !who.ok()) {
        return error(who.error());
      }
      return ok(api::toJson(api_.listClusters()), kJson);
    }
    case Route::Holds: {
      if (auto who = authorize(req, api::Scope::Read, param("access_token")); !who.ok()) {
        return error(who.error());
      }
      auto holds = api_.listHolds(param("cluster"));
      if (!holds.ok()) {
        return error(holds.error());
      }
      return ok(api::toJson(holds.value()), kJson);
    }
    case Route::Events:
      return events(req, query);
    case Route::Hold: {
      auto name = percentDecode(std::string_view(target->path).substr(10), false);
      if (!name) {
        return error(invalid("malformed name escape"));
      }
      return liftHold(req, *name, query);
    }
    case Route::Node: {
      auto name = percentDecode(std::string_view(target->path).substr(10), false);
      if (!name) {
        return error(invalid("malformed node name escape"));
      }
      if (del) {
        return evict(req, *name, query);
      }
      if (auto who = authorize(req, api::Scope::Read, param("access_token")); !who.ok()) {
        return error(who.error());
      }
      auto node = api_.get(*name, param("cluster"));
      if (!node.ok()) {
        return error(node.error());
      }
      return ok(api::toJson(node.value()), kJson);
    }
    case Route::Watch:
      return watch(req, query);
    case Route::Livez:
      return ok("ok\n", kText);
    case Route::Readyz:
      return readyz(query.count("verbose") > 0);
    case Route::Metrics:
      return metrics(http_connections);
    case Route::OpenApi:
      return asset("docs/openapi.json");
    case Route::Asset:
      return asset(target->path == "/" ? "web/index.html" : "web" + target->path);
    case Route::None:
      break;
  }
  return error({api::Code::NotFound, "no route", {}});
}

HttpResponse Router::evict(const HttpRequest& req, std::string_view name,
                           const std::map<std::string, std::string>& query) {
  auto who = authorize(req, api::Scope::Evict, {});
  if (!who.ok()) {
    return error(who.error());
  }
  v1::EvictNodeRequest ev;
  if (!req.body.empty()) {
    google::protobuf::util::JsonParseOptions opts;
    if (!google::protobuf::util::JsonStringToMessage(std::string(req.body), &ev, opts).ok()) {
      return error(
          invalid("the body must be an EvictNodeRequest in JSON: "
                  "{\"registrationId\": \"ID\", \"reason\": \"TEXT\"}"));
    }
  }
  ev.set_name(std::string(name));
  if (auto it = query.find("registration_id"); it != query.end()) {
    auto id = parseNumber(it->second);
    if (!id) {
      return error(invalid("registration_id must be a number"));
    }
    ev.set_registration_id(*id);
  }
  if (auto it = query.find("reason"); it != query.end()) {
    ev.set_reason(it->second);
  }
  if (auto it = query.find("cluster"); it != query.end()) {
    ev.set_cluster(it->second);
  }
  if (auto it = query.find("hold_seconds"); it != query.end()) {
    auto seconds = parseNumber(it->second);
    if (!seconds || *seconds > api::kMaxHoldSeconds) {
      return error(invalid("hold_seconds must be a number of seconds up to " +
                           std::to_string(api::kMaxHoldSeconds)));
    }
    ev.set_hold_seconds(static_cast<uint32_t>(*seconds));
  }
  auto evicted = api_.evict(who.value(), req.peer, ev);
  if (!evicted.ok()) {
    return error(evicted.error());
  }
  return ok(api::toJson(evicted.value()), kJson);
}

HttpResponse Router::liftHold(const HttpRequest& req, std::string_view name,
                              const std::map<std::string, std::string>& query) {
  auto who = authorize(req, api::Scope::Evict, {});
  if (!who.ok()) {
    return error(who.error());
  }
  v1::LiftHoldRequest lift;
  if (!req.body.empty()) {
    google::protobuf::util::JsonParseOptions opts;
    if (!google::protobuf::util::JsonStringToMessage(std::string(req.body), &lift, opts).ok()) {
      return error(invalid("the body must be a LiftHoldRequest in JSON: {\"reason\": \"TEXT\"}"));
    }
  }
  lift.set_name(std::string(name));
  if (auto it = query.find("reason"); it != query.end()) {
    lift.set_reason(it->second);
  }
  if (auto it = query.find("cluster"); it != query.end()) {
    lift.set_cluster(it->second);
  }
  auto lifted = api_.liftHold(who.value(), req.peer, lift);
  if (!lifted.ok()) {
    return error(lifted.error());
  }
  return ok(api::toJson(lifted.value()), kJson);
}

HttpResponse Router::events(const HttpRequest& req,
                            const std::map<std::string, std::string>& query) {
  auto param = [&query](const char* key) -> std::string_view {
    auto it = query.find(key);
    return it == query.end() ? std::string_view() : std::string_view(it->second);
  };
  if (auto who = authorize(req, api::Scope::Read, param("access_token")); !who.ok()) {
    return error(who.error());
  }
  v1::ListEventsRequest request;
  request.set_cluster(std::string(param("cluster")));
  if (query.count("limit")) {
    auto limit = parseNumber(param("limit"));
    if (!limit) {
      return error(
          invalid("limit must be a number (0: " + std::to_string(api::kDefaultEventsLimit) +
                  ", at most " + std::to_string(api::kMaxEventsLimit) + ")"));
    }
    // Above the maximum the service refuses it, with the number as given when it fits.
    request.set_limit(static_cast<uint32_t>(std::min<uint64_t>(*limit, UINT32_MAX)));
  }
  if (query.count("after_revision")) {
    auto after = parseNumber(param("after_revision"));
    if (!after) {
      return error(invalid("after_revision must be a revision"));
    }
    request.set_after_revision(*after);
  }
  auto events = api_.listEvents(request);
  if (!events.ok()) {
    return error(events.error());
  }
  return ok(api::toJson(events.value()), kJson);
}

RouteResult Router::watch(const HttpRequest& req, const std::map<std::string, std::string>& query) {
  auto param = [&query](const char* key) -> std::string_view {
    auto it = query.find(key);
    return it == query.end() ? std::string_view() : std::string_view(it->second);
  };
  if (auto who = authorize(req, api::Scope::Read, param("access_token")); !who.ok()) {
    return error(who.error());
  }
  api::WatchParams params;
  params.initial = param("initial") == "true" || param("initial") == "1";
  params.cluster = std::string(param("cluster"));
  const std::string_view since = query.count("since") ? param("since") : req.last_event_id;
  if (!since.empty()) {
    auto rev = parseNumber(since);
    if (!rev) {
      return error(invalid("since / Last-Event-ID must be a revision"));
    }
    params.after = *rev;
    params.initial = false;  // Resuming: the client has the state up to `since`.
  }
  std::chrono::milliseconds heartbeat = options_.heartbeat;
  if (query.count("heartbeat_ms")) {
    auto ms = parseNumber(param("heartbeat_ms"));
    if (!ms || *ms < 100) {
      return error(invalid("heartbeat_ms must be a number >= 100"));
    }
    heartbeat = std::chrono::milliseconds(*ms);
  }
  auto opened = api_.openWatch(api::Surface::Sse, params, {});
  if (!opened.ok()) {
    const api::Error& e = opened.error();
    if (!e.window) {
      return error(e);
    }
    // The revision asked for is gone (or unknown): an SSE stream that says "resync" and
    // ends, so EventSource clients get the news as an event, not a failed reconnect.
    HttpResponse res = ok("retry: 1000\n\n", "text/event-stream");
    api::Error gone = e;
    gone.code = api::Code::OutOfRange;
    res.body += api::sseFrame("resync", e.window->current, api::errorJson(gone));
    res.headers.emplace_back("Cache-Control", "no-cache");
    return res;
  }
  return SseStart{std::move(opened.value()), heartbeat};
}

HttpResponse Router::readyz(bool verbose) const {
  const bool listening = status_.epmd_listening();
  const bool draining = status_.draining();
  const bool ready = listening && !draining;
  HttpResponse res = ok(ready ? "ok\n" : "not ready\n", kText);
  res.status = ready ? 200 : 503;
  if (verbose) {
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
  }
  return res;
}

HttpResponse Router::metrics(size_t http_connections) const {
  MetricsInput in;
  in.registry = api_.registry().stats();
  for (size_t i = 0; i < api_.registry().clusterCount(); ++i) {
    in.cluster_names.push_back(api_.registry().clusterName(static_cast<registry::ClusterId>(i)));
  }
  in.grpc_watchers = api_.watchers(api::Surface::Grpc);
  in.sse_watchers = api_.watchers(api::Surface::Sse);
  in.grpc_cut = api_.cut(api::Surface::Grpc);
  in.sse_cut = api_.cut(api::Surface::Sse);
  in.http_connections = http_connections;
  in.ready = status_.epmd_listening() && !status_.draining();
  in.version = options_.version;
  HttpResponse res = ok({}, "text/plain; version=0.0.4; charset=utf-8");
  renderMetrics(in, res.body);
  if (status_.metrics) {
    status_.metrics(res.body);
  }
  return res;
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
    return error({api::Code::NotFound, "no such page", {}});
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
