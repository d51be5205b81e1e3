// epmdx-fleet: the fleet relay. One registry written by its sources' streams (fleet.h),
// served by the daemon's own adapters: gRPC (with Fleet.ListSources), REST/SSE and the page.

#include <malloc.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "server/admin/admin_surfaces.h"
#include "server/api/service.h"
#include "server/common/file_limit.h"
#include "server/common/log.h"
#include "server/fleet/fleet.h"
#include "server/fleet/relay_options.h"

namespace {

using namespace epmdx;

uint64_t startMicros() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

admin::AdminSurfaceOptions surfaceOptions(const fleet::RelayOptions& o) {
  admin::AdminSurfaceOptions s;
  s.grpc_listen = o.grpc_listen;  // A relay's addresses are its job: a taken one fails.
  s.grpc_tls_cert = o.grpc_tls_cert;
  s.grpc_tls_key = o.grpc_tls_key;
  s.grpc_tls_client_ca = o.grpc_tls_client_ca;
  s.http_listen = o.http_listen;
  s.http_allowed_hosts = o.http_allowed_hosts;
  s.http_anonymous_read = o.http_anonymous_read;
  s.web_root = o.web_root;
  s.version = EPMDX_VERSION;
  s.tokens_file = o.tokens_file;
  s.token_out = o.token_out;
  return s;
}

// The relay's parts, in the order they start; stopped in reverse.
struct Relay {
  explicit Relay(fleet::RelayOptions o)
      : options(std::move(o)),
        registry(registryOptions(options)),
        fleet(registry, options.fleet),
        surfaces(surfaceOptions(options), status()),
        service(registry, surfaces.tokens(), options.max_watchers) {
    service.setFleet(&fleet);
  }

  static registry::RegistryOptions registryOptions(const fleet::RelayOptions& o) {
    registry::RegistryOptions r;
    r.max_clusters = 16384;  // Sources x their clusters.
    r.history_size = o.history_size;
    r.initial_revision = startMicros();  // A relay restart answers old revisions 410.
    return r;
  }

  http::DaemonStatus status() {
    http::DaemonStatus st;
    // A relay has no epmd port: ready once serving (a source's state is in /v1/sources,
    // never a reason to take the relay out of its Service), until it drains.
    st.epmd_listening = [] { return true; };
    st.draining = [this] { return draining.load(); };
    return st;
  }

  std::optional<std::string> start() {
    if (auto err = fleet.start()) {
      return err;
    }
    if (auto err = surfaces.start(service)) {
      return err;
    }
    log::info("epmdx-fleet serving",
              {{"grpc", surfaces.grpcPort() ? std::to_string(surfaces.grpcPort()) : "off"},
               {"http", surfaces.httpPort() ? std::to_string(surfaces.httpPort()) : "off"}});
    return std::nullopt;
  }

  void stop() {
    draining = true;
    surfaces.beginDrain();
    surfaces.stop(std::chrono::milliseconds(1000));
    fleet.stop();
  }

  fleet::RelayOptions options;
  std::atomic<bool> draining{false};
  registry::Registry registry;
  fleet::Fleet fleet;
  admin::AdminSurfaces surfaces;
  api::Service service;
};

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
      relay->surfaces.reloadTokens();
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
  // One stream thread per source, each listing its source whole at start: with glibc's
  // default of an arena per thread (up to 8 per core), the nodes the relay keeps end up
  // scattered among each thread's freed temporaries, and a relay started on full sources
  // held about 1.5 KiB per node instead of 0.7 (bench/fleet_bench, memory). The relay writes
  // its registry under one lock anyway: two arenas lose nothing.
  mallopt(M_ARENA_MAX, 2);
  raiseFileLimit();  // A connection or two per source.
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
