#include "server/app/admin_servers.h"

#include <cstdlib>

#ifndef EPMDX_VERSION_STRING
#define EPMDX_VERSION_STRING "0.0.0"
#endif

#include <mutex>
#include <vector>

#include "server/api/auth.h"
#include "server/api/service.h"
#include "server/app/app.h"
#include "server/app/epmd_metrics_text.h"
#include "server/app/port_holder.h"
#include "server/common/host_port.h"
#include "server/common/log.h"
#include "server/common/token_path.h"
#include "server/grpc/grpc_server.h"
#include "server/http/http_server.h"

namespace epmdx::app {
namespace {

/// " (held by pid 812 (epmdx))" for HOST:PORT when the holder can be seen, else "".
std::string holderOf(const std::string& listen) {
  const auto hp = parseHostPort(listen);
  if (!hp || !hp->port) {
    return {};
  }
  const std::string who = describePortHolder(*hp->port);
  return who.empty() ? std::string() : " (held by " + who + ")";
}

std::vector<std::string> splitList(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t comma = s.find(',', start);
    std::string item =
        s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    for (auto& c : item) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
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

}  // namespace

struct AdminServers::Impl {
  explicit Impl(App& a) : app(a) {}

  /// A surface that could not bind: an error when the address was asked for, else the
  /// surface is left off (the epmd port is the job) and the log says how to choose another.
  std::optional<std::string> unbound(const char* name, const char* flag, const std::string& listen,
                                     bool explicit_address, const std::string& error) {
    const std::string reason = error + holderOf(listen);
    if (explicit_address) {
      return reason;
    }
    log::warn(std::string(name) + " is off: its default address is taken",
              {{"reason", reason},
               {"hint", std::string("choose another address with ") + flag +
                            "=HOST:PORT, or turn it off with " + flag + "=off"}});
    std::lock_guard<std::mutex> lock(mu);
    surfaces.push_back({name, false, reason});
    return std::nullopt;
  }

  App& app;
  api::TokenStore tokens;
  std::unique_ptr<api::Service> api;
  std::unique_ptr<grpcapi::GrpcServer> grpc;
  std::unique_ptr<http::HttpServer> http;
  std::mutex mu;
  std::vector<http::SurfaceState> surfaces;  // Guarded by mu.
};

AdminServers::AdminServers(App& app) : impl_(std::make_unique<Impl>(app)) {}

AdminServers::~AdminServers() {
  stop();
}

std::optional<std::string> AdminServers::start() {
  const Options& o = impl_->app.options();
  const bool any = o.grpc_listen != "off" || o.http_listen != "off";
  if (!any) {
    log::info("gRPC and HTTP are off: no admin token, no token file");
    return std::nullopt;
  }
  if (!o.tokens_file.empty()) {
    if (auto err = impl_->tokens.loadFile(o.tokens_file)) {
      return err;
    }
  } else {
    impl_->tokens.generate();  // Published below, once the admin port that names it is bound.
  }
  impl_->api = std::make_unique<api::Service>(impl_->app.registry(), impl_->tokens, o.max_watchers);
  impl_->api->setClusterStates([&app = impl_->app] { return app.clusterStates(); });
  impl_->api->setInstanceName(o.instance_name);
  if (o.grpc_listen != "off") {
    grpcapi::GrpcOptions go;
    go.listen = o.grpc_listen;
    go.tls_cert_file = o.grpc_tls_cert;
    go.tls_key_file = o.grpc_tls_key;
    go.tls_client_ca_file = o.grpc_tls_client_ca;
    impl_->grpc = std::make_unique<grpcapi::GrpcServer>(*impl_->api, go);
    if (auto err = impl_->grpc->start()) {
      impl_->grpc.reset();
      if (auto fatal = impl_->unbound("the gRPC admin API", "--grpc-listen", o.grpc_listen,
                                      o.grpc_listen_explicit, *err)) {
        return fatal;
      }
    } else {
      std::lock_guard<std::mutex> lock(impl_->mu);
      impl_->surfaces.push_back({"grpc", true, ""});
    }
  }
  if (o.http_listen != "off") {
    http::HttpOptions ho;
    ho.listen = o.http_listen;
    ho.allowed_hosts = splitList(o.http_allowed_hosts);
    ho.router.anonymous_read = o.http_anonymous_read;
    ho.router.web_root = o.web_root;
    ho.router.version = EPMDX_VERSION_STRING;
    App& app = impl_->app;
    Impl* impl = impl_.get();
    http::DaemonStatus st;
    st.epmd_listening = [&app] { return app.epmdListening(); };
    st.draining = [&app] { return app.draining(); };
    st.surfaces = [impl, &app] {
      std::vector<http::SurfaceState> out;
      {
        std::lock_guard<std::mutex> lock(impl->mu);
        out = impl->surfaces;
      }
      // Each epmd port, with who may list and resolve names on it.
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
    impl_->http = std::make_unique<http::HttpServer>(*impl_->api, ho, std::move(st));
    if (auto err = impl_->http->start()) {
      impl_->http.reset();
      if (auto fatal = impl_->unbound("the HTTP API and page", "--http-listen", o.http_listen,
                                      o.http_listen_explicit, *err)) {
        return fatal;
      }
    } else {
      std::lock_guard<std::mutex> lock(impl_->mu);
      impl_->surfaces.push_back({"http", true, ""});
    }
  }
  return o.tokens_file.empty() ? publishToken() : std::nullopt;
}

std::optional<std::string> AdminServers::publishToken() {
  // One file per daemon, named after its admin port (gRPC, else HTTP), unless one was named.
  const Options& o = impl_->app.options();
  const uint16_t port = grpcPort() != 0 ? grpcPort() : httpPort();
  if (port == 0) {
    // Both default addresses were taken: nothing serves the token, so no file names it.
    log::info("no admin API is serving: no token file");
    return std::nullopt;
  }
  const auto getenv_fn = [](const char* name) -> const char* { return std::getenv(name); };
  const std::string path = !o.token_out.empty() ? o.token_out : tokenPathForPort(getenv_fn, port);
  auto published = impl_->tokens.publishGenerated(path);
  if (!published) {
    return published.error();
  }
  log::info(published.value() == api::TokenStore::Published::Adopted
                ? "adopted the admin token of an earlier run"
                : "generated an admin token",
            {{"file", path}});
  return std::nullopt;
}

void AdminServers::beginDrain() {
  if (impl_->api) {
    impl_->api->beginDrain();
  }
  if (impl_->grpc) {
    impl_->grpc->beginDrain();
  }
  if (impl_->http) {
    impl_->http->beginDrain();
  }
}

void AdminServers::stop() {
  const auto grace = std::chrono::milliseconds(impl_->app.options().drain_timeout_ms);
  if (impl_->grpc) {
    impl_->grpc->stop(grace);
  }
  if (impl_->http) {
    impl_->http->stop();
  }
}

void AdminServers::reloadTokens() {
  if (auto err = impl_->tokens.reload()) {
    log::error("tokens not reloaded", {{"error", *err}});
  } else {
    log::info("tokens reloaded");
  }
}

uint16_t AdminServers::grpcPort() const {
  return impl_->grpc ? impl_->grpc->port() : 0;
}
uint16_t AdminServers::httpPort() const {
  return impl_->http ? impl_->http->port() : 0;
}

}  // namespace epmdx::app
