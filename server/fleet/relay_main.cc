// epmdx-fleet: the fleet relay. One registry written by its sources' streams (fleet.h),
// served by the daemon's own adapters: gRPC (with Fleet.ListSources), REST/SSE and the page.

#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "server/api/auth.h"
#include "server/api/service.h"
#include "server/common/log.h"
#include "server/common/token_path.h"
#include "server/fleet/fleet.h"
#include "server/fleet/relay_options.h"
#include "server/grpc/grpc_server.h"
#include "server/http/http_server.h"

namespace {

using namespace epmdx;

std::vector<std::string> splitHosts(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size() && !s.empty()) {
    const size_t comma = s.find(',', start);
    const std::string item = s.substr(start, comma == std::string::npos ? comma : comma - start);
    if (!item.empty()) {
      out.push_back(item);
    }
    if (comma == std::string::npos) {
      break;
    }
    start = comma + 1;
  }
  return out;
}

uint64_t startMicros() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

// The relay's parts, in the order they start; stopped in reverse.
struct Relay {
  explicit Relay(fleet::RelayOptions o)
      : options(std::move(o)),
        registry(registryOptions(options)),
        fleet(registry, options.fleet),
        service(registry, tokens, options.max_watchers) {
    service.setFleet(&fleet);
  }

  static registry::RegistryOptions registryOptions(const fleet::RelayOptions& o) {
    registry::RegistryOptions r;
    r.max_clusters = 16384;  // Sources x their clusters.
    r.history_size = o.history_size;
    r.initial_revision = startMicros();  // A relay restart answers old revisions 410.
    return r;
  }

  std::optional<std::string> start();
  void stop();

  fleet::RelayOptions options;
  api::TokenStore tokens;
  registry::Registry registry;
  fleet::Fleet fleet;
  api::Service service;
  std::unique_ptr<grpcapi::GrpcServer> grpc;
  std::unique_ptr<http::HttpServer> http;
};

std::optional<std::string> Relay::start() {
  if (!options.tokens_file.empty()) {
    if (auto err = tokens.loadFile(options.tokens_file)) {
      return err;
    }
  } else {
    tokens.generate();
  }
  if (auto err = fleet.start()) {
    return err;
  }
  if (options.grpc_listen != "off") {
    grpcapi::GrpcOptions go;
    go.listen = options.grpc_listen;
    go.tls_cert_file = options.grpc_tls_cert;
    go.tls_key_file = options.grpc_tls_key;
    go.tls_client_ca_file = options.grpc_tls_client_ca;
    grpc = std::make_unique<grpcapi::GrpcServer>(service, go);
    if (auto err = grpc->start()) {
      return "cannot serve gRPC on " + options.grpc_listen + ": " + *err;
    }
  }
  if (options.http_listen != "off") {
    http::HttpOptions ho;
    ho.listen = options.http_listen;
    ho.allowed_hosts = splitHosts(options.http_allowed_hosts);
    ho.router.anonymous_read = options.http_anonymous_read;
    ho.router.web_root = options.web_root;
    ho.router.version = EPMDX_VERSION;
    http::DaemonStatus st;
    st.epmd_listening = [] { return true; };  // A relay has no epmd port: ready once serving.
    st.draining = [] { return false; };
    http = std::make_unique<http::HttpServer>(service, ho, std::move(st));
    if (auto err = http->start()) {
      return "cannot serve HTTP on " + options.http_listen + ": " + *err;
    }
  }
  if (options.tokens_file.empty()) {
    const uint16_t port = grpc ? grpc->port() : (http ? http->port() : 0);
    const auto getenv_fn = [](const char* name) -> const char* { return std::getenv(name); };
    const std::string path =
        !options.token_out.empty() ? options.token_out : tokenPathForPort(getenv_fn, port);
    auto published = tokens.publishGenerated(path);
    if (!published) {
      return published.error();
    }
    log::info("admin token", {{"file", path}});
  }
  log::info("epmdx-fleet serving", {{"grpc", grpc ? std::to_string(grpc->port()) : "off"},
                                    {"http", http ? std::to_string(http->port()) : "off"}});
  return std::nullopt;
}

void Relay::stop() {
  service.beginDrain();
  if (grpc) {
    grpc->beginDrain();
  }
  if (http) {
    http->beginDrain();
  }
  if (grpc) {
    grpc->stop(std::chrono::milliseconds(1000));
  }
  if (http) {
    http->stop();
  }
  fleet.stop();
}

std::optional<std::string> sourceToken(const fleet::RelayOptions& o) {
  if (o.source_token_file.empty()) {
    return std::nullopt;
  }
  auto t = fleet::readSourceToken(o.source_token_file);
  if (!t.ok()) {
    log::error("source token not read", {{"error", t.error()}});
    return std::nullopt;
  }
  return t.value();
}

int serve(fleet::RelayOptions o) {
  if (!o.source_token_file.empty()) {
    auto t = fleet::readSourceToken(o.source_token_file);
    if (!t.ok()) {
      std::fprintf(stderr, "epmdx-fleet: %s\n", t.error().c_str());
      return 1;
    }
    o.fleet.stream.token = t.value();
  }
  // Signals are taken by sigwait() below: block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) {
    sigaddset(&signals, s);
  }
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  auto* relay = new Relay(std::move(o));  // Not destroyed: see main.cc of epmdx.
  if (auto err = relay->start()) {
    log::error("epmdx-fleet cannot start", {{"error", *err}});
    std::fprintf(stderr, "epmdx-fleet: %s\n", err->c_str());
    std::_Exit(1);
  }
  for (;;) {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig == SIGHUP) {
      if (auto err = relay->tokens.reload()) {
        log::error("tokens not reloaded", {{"error", *err}});
      }
      relay->fleet.reload(sourceToken(relay->options));
      continue;
    }
    log::info("stopping", {{"signal", sig}});
    relay->stop();
    return 0;
  }
}

}  // namespace

int main(int argc, char** argv) {
  auto parsed = fleet::parseRelayOptions(argc, argv);
  if (auto* code = std::get_if<int>(&parsed)) {
    return *code;
  }
  auto& o = std::get<fleet::RelayOptions>(parsed);
  log::configure(o.debug ? log::Level::Debug : log::Level::Info,
                 o.log_format == "json" ? log::Format::Json : log::Format::Text, log::Sink::Stderr);
  std::signal(SIGPIPE, SIG_IGN);
  return serve(std::move(o));
}
