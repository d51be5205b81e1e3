#include "server/http/http_server.h"

#include "server/common/log.h"
#include "server/common/prometheus.h"

namespace epmdx::http {
namespace {

constexpr auto kTick = std::chrono::milliseconds(100);

bool splitHostPort(const std::string& hp, std::string& host, uint16_t& port) {
  const auto colon = hp.rfind(':');
  if (colon == std::string::npos) {
    return false;
  }
  host = hp.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string p = hp.substr(colon + 1);
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  const int n = std::stoi(p);
  if (n > 65535) {
    return false;
  }
  port = static_cast<uint16_t>(n);
  return true;
}

}  // namespace

HttpServer::HttpServer(api::Service& api, HttpOptions options, DaemonStatus status)
    : api_(api), options_(std::move(options)), status_(std::move(status)) {}

HttpServer::~HttpServer() {
  stop();
}

std::optional<std::string> HttpServer::start() {
  std::string host;
  uint16_t port = 0;
  if (!splitHostPort(options_.listen, host, port)) {
    return "--http-listen must be HOST:PORT, not \"" + options_.listen + "\"";
  }
  beast::error_code ec;
  asio::ip::address address = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  if (ec) {
    return "--http-listen: \"" + host + "\" is not an IP address";
  }
  const tcp::endpoint ep(address, port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) {
    // SO_REUSEADDR only (a restart may bind over TIME_WAIT); never SO_REUSEPORT, which would
    // let a second daemon share the port and split clients between two registries.
    acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    acceptor_.bind(ep, ec);
  }
  if (!ec) {
    acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    acceptor_.close();
    return "cannot listen for HTTP on " + options_.listen + ": " + ec.message();
  }
  port_ = acceptor_.local_endpoint().port();

  RouterOptions ro = options_.router;
  ro.allowed_hosts.clear();
  bool any = false;
  for (const auto& h : options_.allowed_hosts) {
    any = any || h == "*";
    ro.allowed_hosts.push_back(h);
  }
  if (options_.allowed_hosts.empty() && address.is_loopback()) {
    ro.allowed_hosts = {"localhost", "127.0.0.1", "[::1]"};
  } else if (!any && !options_.allowed_hosts.empty()) {
    ro.allowed_hosts.push_back(address.is_v6() ? "[" + address.to_string() + "]"
                                               : address.to_string());
  }
  if (any || (options_.allowed_hosts.empty() && !address.is_loopback())) {
    ro.allowed_hosts.clear();  // Any Host.
  }
  DaemonStatus st = status_;
  st.metrics = [this, more = status_.metrics](std::string& out) {
    PrometheusWriter w;
    w.family("epmdx_http_busy_total", "counter",
             "Large HTTP requests (lists, a watch's initial state) answered 503 at once "
             "because the work already waiting for the worker was too big.");
    w.sample("epmdx_http_busy_total", busy_.load());
    out += w.text();
    if (more) {
      more(out);
    }
  };
  router_.emplace(api_, std::move(ro), std::move(st));

  subscription_ = api_.subscribe([this] {
    if (!wake_posted_.exchange(true)) {
      asio::post(io_, [this] { wakeStreams(); });
    }
  });
  accept();
  tick();
  workers_.start();
  thread_ = std::thread([this] { io_.run(); });
  return std::nullopt;
}

void HttpServer::accept() {
  acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) {
      return;
    }
    if (ec) {
      // Out of descriptors, most likely: try again shortly rather than spin.
      auto retry = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(100));
      retry->async_wait([this, retry](beast::error_code) { accept(); });
      return;
    }
    if (connections_ >= options_.max_connections && !draining_) {
      shedIdle();  // An idle socket makes room for a real request (a probe, say).
    }
    if (connections_ >= options_.max_connections || draining_) {
      refuse(std::move(socket));
    } else {
      ++connections_;
      std::make_shared<Connection>(std::move(socket), static_cast<ConnectionHost&>(*this))->start();
    }
    accept();
  });
}

void HttpServer::refuse(tcp::socket socket) const {
  // Written at once and closed, without a Connection: the room it would take is the
  // problem. Non-blocking: a full socket buffer loses the answer, never the loop.
  const HttpResponse res =
      draining_ ? errorResponse(HttpError::ShuttingDown, "epmdx is shutting down")
                : errorResponse(HttpError::TooManyConnections,
                                "too many HTTP connections (" +
                                    std::to_string(options_.max_connections) + " open)");
  std::string bytes =
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: " + res.content_type + "\r\n";
  for (const auto& [name, value] : res.headers) {
    bytes += name + ": " + value + "\r\n";
  }
  bytes += "Connection: close\r\nContent-Length: " + std::to_string(res.body.size()) + "\r\n\r\n" +
           res.body;
  beast::error_code ignored;
  socket.non_blocking(true, ignored);
  (void)::send(socket.native_handle(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
  socket.close(ignored);
}

void HttpServer::route(const HttpRequest& req, AnswerFn done) {
  Resolved resolved = router_->resolve(req);
  if (draining_ && resolved.opens_stream) {
    done({errorResponse(HttpError::ShuttingDown, "epmdx is shutting down"), {}});
    return;
  }
  const auto cost = router_->offloadCost(resolved, HttpOptions::kRequestCost);
  if (!cost) {
    done({router_->handle(req, resolved, connections_), {}});
    return;
  }
  // The Router is read-only once built, and what it calls is thread-safe (the api::Service
  // serves gRPC's threads too; tokens and the registry lock inside). Metrics, the one route
  // reading loop state, stays on the loop.
  WorkerPool::Job job = [this, req, resolved = std::move(resolved),
                         done]() mutable -> WorkerPool::Finish {
    auto answer = std::make_shared<Answer>(Answer{router_->handle(req, resolved, 0), {}});
    if (auto* sse = std::get_if<SseStart>(&answer->result)) {
      answer->initial = SseStream::takeInitial(sse->watch);
    }
    // Posted once the worker counts as free: a client that has its answer finds it so.
    return [this, answer, done = std::move(done)]() mutable {
      asio::post(io_, [this, answer, done = std::move(done)]() mutable {
        if (draining_ && std::holds_alternative<SseStart>(answer->result)) {
          // Drain began while the worker opened it: beginDrain() did not see this stream.
          *answer = {errorResponse(HttpError::ShuttingDown, "epmdx is shutting down"), {}};
        }
        done(std::move(*answer));
      });
    };
  };
  if (!workers_.trySubmit(job, *cost)) {
    ++busy_;
    done(
        {errorResponse(HttpError::Busy, "too many large requests at once (more than " +
                                            std::to_string(options_.worker_budget) +
                                            " nodes' work waiting for the workers): retry shortly"),
         {}});
  }
}

bool HttpServer::shedIdle() {
  for (auto it = open_.begin(); it != open_.end(); ++it) {
    if ((*it)->idle()) {
      (*it)->shed();  // Detaches it: its room is free now, not when its read ends.
      open_.erase(it);
      --connections_;
      return true;
    }
  }
  return false;
}

void HttpServer::startSse(beast::tcp_stream stream, SseStart start,
                          std::vector<api::EncodedEvents::Bytes> initial) {
  auto s = std::make_shared<SseStream>(std::move(stream), std::move(start.watch), start.heartbeat,
                                       api_, encoded_, [this](SseStream* done) {
                                         streams_.erase(done);
                                         --connections_;
                                       });
  streams_.emplace(s.get(), s);
  s->begin(std::move(initial));
}

void HttpServer::wakeStreams() {
  wake_posted_ = false;
  // Copy: a stream may close (and erase itself) while we walk.
  std::vector<std::shared_ptr<SseStream>> all;
  all.reserve(streams_.size());
  for (auto& [p, s] : streams_) {
    all.push_back(s);
  }
  for (auto& s : all) {
    s->pump();
  }
}

void HttpServer::tick() {
  ticker_.expires_after(kTick);
  ticker_.async_wait([this](beast::error_code ec) {
    if (ec) {
      return;
    }
    const auto now = std::chrono::steady_clock::now();
    std::vector<std::shared_ptr<SseStream>> all;
    for (auto& [p, s] : streams_) {
      all.push_back(s);
    }
    for (auto& s : all) {
      s->tick(now);
    }
    tick();
  });
}

void HttpServer::beginDrain() {
  if (!thread_.joinable()) {
    return;
  }
  asio::post(io_, [this] {
    draining_ = true;
    std::vector<std::shared_ptr<SseStream>> all;
    for (auto& [p, s] : streams_) {
      all.push_back(s);
    }
    for (auto& s : all) {
      s->end();
    }
  });
}

void HttpServer::stop() {
  subscription_.reset();  // No more wake-ups into the event loop.
  if (!thread_.joinable()) {
    return;
  }
  asio::post(io_, [this] {
    beast::error_code ignored;
    acceptor_.close(ignored);
    ticker_.cancel();
    draining_ = true;
    for (auto& [p, s] : streams_) {
      s->end();
    }
    io_.stop();  // Open keep-alive connections are closed with the event loop.
  });
  thread_.join();
  // Jobs still waiting are dropped with the connections they hold, now that the loop is
  // stopped; answers posted meanwhile go with io_.
  workers_.stop();
  streams_.clear();
}

}  // namespace epmdx::http
