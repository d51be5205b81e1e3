#include "server/app/admin_servers.h"

#ifndef EPMDX_VERSION_STRING
#define EPMDX_VERSION_STRING "0.0.0"
#endif

#include "server/admin/admin_surfaces.h"
#include "server/api/service.h"
#include "server/app/app.h"
#include "server/app/epmd_metrics_text.h"
#include "server/common/log.h"

namespace epmdx::app {
namespace {

admin::AdminSurfaceOptions surfaceOptions(const Options& o) {
  admin::AdminSurfaceOptions s;
  s.grpc_listen = o.grpc_listen;
  s.grpc_listen_explicit = o.grpc_listen_explicit;
  s.grpc_tls_cert = o.grpc_tls_cert;
  s.grpc_tls_key = o.grpc_tls_key;
  s.grpc_tls_client_ca = o.grpc_tls_client_ca;
  s.http_listen = o.http_listen;
  s.http_listen_explicit = o.http_listen_explicit;
  s.http_allowed_hosts = o.http_allowed_hosts;
  s.http_anonymous_read = o.http_anonymous_read;
  s.web_root = o.web_root;
  s.version = EPMDX_VERSION_STRING;
  s.tokens_file = o.tokens_file;
  s.token_out = o.token_out;
  return s;
}

/// What the daemon's readiness and metrics add to the admin surfaces': its epmd ports.
http::DaemonStatus daemonStatus(App& app) {
  http::DaemonStatus st;
  st.epmd_listening = [&app] { return app.epmdListening(); };
  st.draining = [&app] { return app.draining(); };
  st.surfaces = [&app] {
    // Each epmd port, with who may list and resolve names on it.
    std::vector<http::SurfaceState> out;
    const auto states = app.clusterStates();
    for (size_t i = 0; i < states.size(); ++i) {
      const auto& c = states[i];
      out.push_back({"cluster " + app.registry().clusterName(static_cast<registry::ClusterId>(i)),
                     c.serving,
                     "port " + std::to_string(c.port) + ", names from " + c.names_from +
                         ", lookups from " + c.lookups_from});
    }
    return out;
  };
  st.metrics = [&app](std::string& out) { renderEpmdMetrics(app.epmdMetrics(), out); };
  return st;
}

}  // namespace

struct AdminServers::Impl {
  explicit Impl(App& a) : app(a), surfaces(surfaceOptions(a.options()), daemonStatus(a)) {}

  App& app;
  // Before `surfaces`, so that it outlives the servers that call it (destroyed first).
  std::unique_ptr<api::Service> api;
  admin::AdminSurfaces surfaces;
};

AdminServers::AdminServers(App& app) : impl_(std::make_unique<Impl>(app)) {}

AdminServers::~AdminServers() {
  stop();
}

std::optional<std::string> AdminServers::start() {
  if (!impl_->surfaces.any()) {
    log::info("gRPC and HTTP are off: no admin token, no token file");
    return std::nullopt;
  }
  const Options& o = impl_->app.options();
  impl_->api = std::make_unique<api::Service>(impl_->app.registry(), impl_->surfaces.tokens(),
                                              o.max_watchers);
  impl_->api->setClusterStates([&app = impl_->app] { return app.clusterStates(); });
  impl_->api->setInstanceName(o.instance_name);
  return impl_->surfaces.start(*impl_->api);
}

void AdminServers::beginDrain() {
  impl_->surfaces.beginDrain();
}

void AdminServers::stop() {
  impl_->surfaces.stop(std::chrono::milliseconds(impl_->app.options().drain_timeout_ms));
}

void AdminServers::reloadTokens() {
  impl_->surfaces.reloadTokens();
}

uint16_t AdminServers::grpcPort() const {
  return impl_->surfaces.grpcPort();
}
uint16_t AdminServers::httpPort() const {
  return impl_->surfaces.httpPort();
}

}  // namespace epmdx::app
