#include "server/http/http_server.h"

#include <google/protobuf/util/json_util.h>
#include <httplib.h>

#include <fstream>
#include <sstream>

#include "server/api/convert.h"
#include "server/api/json.h"
#include "server/common/log.h"
#include "server/http/assets.h"
#include "server/http/metrics_text.h"
#include "server/http/sse_stream.h"

namespace epmdx::http {
namespace {
using api::errorJson;
using api::toJson;

constexpr const char* kJson = "application/json";

void jsonError(httplib::Response& res, int code, const std::string& status,
               const std::string& message) {
  res.status = code;
  res.set_content(errorJson(code, status, message), kJson);
}

std::string contentType(const std::string& file) {
  auto ends = [&file](const char* s) {
    const std::string suffix(s);
    return file.size() >= suffix.size() &&
           file.compare(file.size() - suffix.size(), suffix.size(), suffix) == 0;
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
    return "application/json";
  }
  if (ends(".svg")) {
    return "image/svg+xml";
  }
  return "application/octet-stream";
}

bool parseRevision(const std::string& s, registry::Revision& out) {
  if (s.empty() || s.size() > 19 || s.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  out = std::stoull(s);
  return true;
}

bool splitHostPort(const std::string& hp, std::string& host, int& port) {
  const auto colon = hp.rfind(':');
  if (colon == std::string::npos) {
    return false;
  }
  host = hp.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string p = hp.substr(colon + 1);
  if (p.empty() || p.find_first_not_of("0123456789") != std::string::npos || p.size() > 5) {
    return false;
  }
  port = std::stoi(p);
  return port <= 65535;
}

}  // namespace

HttpServer::HttpServer(registry::Registry& registry, const api::TokenStore& tokens,
                       HttpOptions options, DaemonStatus status)
    : registry_(registry),
      tokens_(tokens),
      options_(std::move(options)),
      status_(std::move(status)),
      server_(std::make_unique<httplib::Server>()) {}

HttpServer::~HttpServer() {
  stop();
  join();
}

std::optional<std::string> HttpServer::start() {
  std::string host;
  int port = 0;
  if (!splitHostPort(options_.listen, host, port)) {
    return "--http-listen must be HOST:PORT, not \"" + options_.listen + "\"";
  }
  const size_t threads = options_.max_watchers + 8;
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server_->set_payload_max_length(64 * 1024);
  server_->set_write_timeout(std::chrono::seconds(5));  // A client that stops reading goes.
  server_->set_keep_alive_timeout(2);
  routes();
  if (port == 0) {
    port = server_->bind_to_any_port(host);
    if (port < 0) {
      return "cannot listen for HTTP on " + options_.listen;
    }
  } else if (!server_->bind_to_port(host, port)) {
    return "cannot listen for HTTP on " + options_.listen;
  }
  port_ = static_cast<uint16_t>(port);
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return std::nullopt;
}

void HttpServer::beginDrain() {
  std::lock_guard<std::mutex> lock(streams_mu_);
  draining_ = true;
  for (auto* s : streams_) {
    s->stop();
  }
}

void HttpServer::stop() {
  beginDrain();
  server_->stop();  // Closes the listening socket; idle keep-alive workers end by timeout.
}

void HttpServer::join() {
  if (thread_.joinable()) {
    thread_.join();
  }
}

bool HttpServer::authorize(const httplib::Request& req, httplib::Response& res, api::Scope scope,
                           api::Principal* who) {
  std::string header = req.get_header_value("Authorization");
  if (header.empty() && scope == api::Scope::Read && req.has_param("access_token")) {
    // EventSource sends no headers. Reads only: a token in a URL must never evict.
    header = "Bearer " + req.get_param_value("access_token");
  }
  if (header.empty() && scope == api::Scope::Read && options_.anonymous_read) {
    return true;
  }
  switch (tokens_.check(header, scope, who)) {
    case api::TokenStore::Check::Ok:
      return true;
    case api::TokenStore::Check::Unauthenticated:
      res.set_header("WWW-Authenticate", "Bearer");
      jsonError(res, 401, "UNAUTHENTICATED",
                "missing or unknown bearer token (Authorization: Bearer TOKEN)");
      return false;
    case api::TokenStore::Check::PermissionDenied:
      jsonError(res, 403, "PERMISSION_DENIED",
                std::string("the token lacks the \"") +
                    (scope == api::Scope::Read ? "read" : "evict") + "\" scope");
      return false;
  }
  return false;
}

void HttpServer::serveAsset(const std::string& file, httplib::Response& res) {
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
  if (!found) {
    for (const auto& [path, bytes] : embeddedAssets()) {
      if (path == file) {
        body.assign(bytes);
        found = true;
      }
    }
  }
  if (!found) {
    jsonError(res, 404, "NOT_FOUND", "no such page");
    return;
  }
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Cache-Control", "no-cache");
  if (file.rfind("web/", 0) == 0) {
    res.set_header("Content-Security-Policy",
                   "default-src 'self'; connect-src 'self'; img-src 'self' data:");
  }
  res.set_content(body, contentType(file).c_str());
}

void HttpServer::routes() {
  auto& s = *server_;
  s.set_exception_handler(
      [](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        log::error("http handler failed", {{"path", req.path}, {"error", what}});
        jsonError(res, 500, "INTERNAL", "internal error");
      });

  s.Get("/v1/nodes", [this](const httplib::Request& req, httplib::Response& res) {
    if (!authorize(req, res, api::Scope::Read, nullptr)) {
      return;
    }
    const auto snapshot = registry_.list();
    v1::ListNodesResponse resp;
    for (const auto& r : snapshot.nodes) {
      api::toProto(*r, *resp.add_nodes());
    }
    resp.set_revision(snapshot.revision);
    res.set_content(toJson(resp), kJson);
  });

  s.Get(R"(/v1/nodes/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
    if (!authorize(req, res, api::Scope::Read, nullptr)) {
      return;
    }
    const std::string name = req.matches[1];
    auto r = registry_.find(name);
    if (!r) {
      jsonError(res, 404, "NOT_FOUND", "no node named \"" + name + "\"");
      return;
    }
    v1::Node node;
    api::toProto(*r, node);
    res.set_content(toJson(node), kJson);
  });

  s.Delete(R"(/v1/nodes/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
    api::Principal who;
    if (!authorize(req, res, api::Scope::Evict, &who)) {
      return;
    }
    v1::EvictNodeRequest ev;
    if (!req.body.empty()) {
      google::protobuf::util::JsonParseOptions opts;
      if (!google::protobuf::util::JsonStringToMessage(req.body, &ev, opts).ok()) {
        jsonError(res, 400, "INVALID_ARGUMENT",
                  "the body must be an EvictNodeRequest in JSON: "
                  "{\"registrationId\": \"ID\", \"reason\": \"TEXT\"}");
        return;
      }
    }
    ev.set_name(req.matches[1]);
    if (req.has_param("registration_id")) {
      registry::Revision id = 0;
      if (!parseRevision(req.get_param_value("registration_id"), id)) {
        jsonError(res, 400, "INVALID_ARGUMENT", "registration_id must be a number");
        return;
      }
      ev.set_registration_id(id);
    }
    if (req.has_param("reason")) {
      ev.set_reason(req.get_param_value("reason"));
    }
    if (ev.reason().size() > 256) {
      jsonError(res, 400, "INVALID_ARGUMENT", "reason is longer than 256 bytes");
      return;
    }
    std::optional<registry::RegistrationId> expected;
    if (ev.has_registration_id()) {
      expected = ev.registration_id();
    }
    const std::string actor =
        who.identity + "@" + req.remote_addr + ":" + std::to_string(req.remote_port);
    auto evicted = registry_.evict(ev.name(), expected, registry::UnregisterReason::Evicted, actor,
                                   ev.reason());
    if (!evicted.ok()) {
      if (evicted.error() == registry::EvictError::NotFound) {
        jsonError(res, 404, "NOT_FOUND", "no node named \"" + ev.name() + "\"");
      } else {
        jsonError(res, 409, "FAILED_PRECONDITION",
                  "\"" + ev.name() + "\" is now held by another registration");
      }
      return;
    }
    log::info("evicted", {{"name", log::printable(ev.name())},
                          {"id", evicted.value().registration->id},
                          {"by", actor},
                          {"reason", log::printable(ev.reason())}});
    v1::EvictNodeResponse resp;
    api::toProto(*evicted.value().registration, *resp.mutable_node());
    resp.set_revision(evicted.value().revision);
    res.set_content(toJson(resp), kJson);
  });

  s.Get("/v1/watch",
        [this](const httplib::Request& req, httplib::Response& res) { watch(req, res); });

  s.Get("/livez", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });

  s.Get("/readyz", [this](const httplib::Request& req, httplib::Response& res) {
    const bool listening = status_.epmd_listening();
    const bool draining = status_.draining();
    const bool ready = listening && !draining;
    res.status = ready ? 200 : 503;
    if (req.has_param("verbose")) {
      std::string body;
      body += std::string(listening ? "[+]" : "[-]") + "epmd-listener " +
              (listening ? "ok" : "failed: the epmd port is not bound") + "\n";
      body += std::string(!draining ? "[+]" : "[-]") + "not-draining " +
              (!draining ? "ok" : "failed: shutting down") + "\n";
      body += ready ? "readyz check passed\n" : "readyz check failed\n";
      res.set_content(body, "text/plain");
    } else {
      res.set_content(ready ? "ok\n" : "not ready\n", "text/plain");
    }
  });

  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    MetricsInput in;
    in.registry = registry_.stats();
    in.epmd = status_.epmd_metrics;
    in.grpc_watchers = status_.grpc_watchers ? status_.grpc_watchers() : 0;
    in.sse_watchers = sse_watchers_.load();
    in.ready = status_.epmd_listening() && !status_.draining();
    in.version = options_.version;
    res.set_content(renderMetrics(in), "text/plain; version=0.0.4; charset=utf-8");
  });

  s.Get("/v1/openapi.json", [this](const httplib::Request&, httplib::Response& res) {
    serveAsset("docs/openapi.json", res);
  });
  s.Get("/", [this](const httplib::Request&, httplib::Response& res) {
    serveAsset("web/index.html", res);
  });
  s.Get(R"(/(app\.js|style\.css|favicon\.svg))",
        [this](const httplib::Request& req, httplib::Response& res) {
          serveAsset("web/" + std::string(req.matches[1]), res);
        });
}

void HttpServer::watch(const httplib::Request& req, httplib::Response& res) {
  if (!authorize(req, res, api::Scope::Read, nullptr)) {
    return;
  }
  SseStream::Options so;
  so.heartbeat = options_.heartbeat;
  so.initial = req.get_param_value("initial") == "true" || req.get_param_value("initial") == "1";
  registry::Revision rev = 0;
  const std::string since =
      req.has_param("since") ? req.get_param_value("since") : req.get_header_value("Last-Event-ID");
  if (!since.empty()) {
    if (!parseRevision(since, rev)) {
      jsonError(res, 400, "INVALID_ARGUMENT", "since / Last-Event-ID must be a revision");
      return;
    }
    so.after = rev;
  }
  if (req.has_param("heartbeat_ms")) {
    registry::Revision ms = 0;
    if (!parseRevision(req.get_param_value("heartbeat_ms"), ms) || ms < 100) {
      jsonError(res, 400, "INVALID_ARGUMENT", "heartbeat_ms must be a number >= 100");
      return;
    }
    so.heartbeat = std::chrono::milliseconds(ms);
  }
  {
    std::lock_guard<std::mutex> lock(streams_mu_);
    if (draining_) {
      jsonError(res, 503, "UNAVAILABLE", "epmdx is shutting down");
      return;
    }
    if (sse_watchers_.load() >= options_.max_watchers) {
      res.set_header("Retry-After", "5");
      jsonError(res, 503, "RESOURCE_EXHAUSTED", "too many watch streams (--max-watchers)");
      return;
    }
    ++sse_watchers_;
  }
  auto stream = std::make_shared<SseStream>(registry_, so);
  {
    std::lock_guard<std::mutex> lock(streams_mu_);
    streams_.insert(stream.get());
  }
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");  // Tell nginx-style proxies not to buffer.
  res.set_chunked_content_provider(
      "text/event-stream",
      [stream](size_t, httplib::DataSink& sink) {
        bool done = false;
        const std::string frames = stream->next(done);
        if (!frames.empty() && !sink.write(frames.data(), frames.size())) {
          return false;  // The client went away or stopped reading (write timeout).
        }
        if (done) {
          sink.done();
        }
        return true;
      },
      [this, stream](bool) {
        std::lock_guard<std::mutex> lock(streams_mu_);
        streams_.erase(stream.get());
        --sse_watchers_;
      });
}

}  // namespace epmdx::http
