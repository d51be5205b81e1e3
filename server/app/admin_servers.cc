#include "server/app/admin_servers.h"

#include <cstdlib>

#ifndef EPMDX_VERSION_STRING
#define EPMDX_VERSION_STRING "0.0.0"
#endif

#include "server/api/auth.h"
#include "server/app/app.h"
#include "server/common/log.h"
#include "server/common/token_path.h"
#include "server/grpc/grpc_server.h"
#include "server/http/http_server.h"

namespace epmdx::app {

struct AdminServers::Impl {
  explicit Impl(App& a) : app(a) {}
  App& app;
  api::TokenStore tokens;
  std::unique_ptr<grpcapi::GrpcServer> grpc;
  std::unique_ptr<http::HttpServer> http;
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
  if (o.grpc_listen != "off") {
    grpcapi::GrpcOptions go;
    go.listen = o.grpc_listen;
    go.tls_cert_file = o.grpc_tls_cert;
    go.tls_key_file = o.grpc_tls_key;
    go.tls_client_ca_file = o.grpc_tls_client_ca;
    go.max_watchers = o.max_watchers;
    impl_->grpc = std::make_unique<grpcapi::GrpcServer>(impl_->app.registry(), impl_->tokens, go);
    if (auto err = impl_->grpc->start()) {
      return err;
    }
  }
  if (o.http_listen != "off") {
    http::HttpOptions ho;
    ho.listen = o.http_listen;
    ho.max_watchers = o.max_watchers;
    ho.anonymous_read = o.http_anonymous_read;
    ho.web_root = o.web_root;
    ho.version = EPMDX_VERSION_STRING;
    App& app = impl_->app;
    Impl* impl = impl_.get();
    http::DaemonStatus st;
    st.epmd_listening = [&app] { return app.epmdListening(); };
    st.draining = [&app] { return app.draining(); };
    st.grpc_watchers = [impl] { return impl->grpc ? impl->grpc->service().watches().size() : 0; };
    st.epmd_metrics = &app.epmdMetrics();
    impl_->http =
        std::make_unique<http::HttpServer>(app.registry(), impl_->tokens, ho, std::move(st));
    if (auto err = impl_->http->start()) {
      return err;
    }
  }
  return o.tokens_file.empty() ? publishToken() : std::nullopt;
}

std::optional<std::string> AdminServers::publishToken() {
  // One file per daemon, named after its admin port (gRPC, else HTTP), unless one was named.
  const Options& o = impl_->app.options();
  const auto getenv_fn = [](const char* name) -> const char* { return std::getenv(name); };
  const std::string path =
      !o.token_out.empty() ? o.token_out
                           : tokenPathForPort(getenv_fn, grpcPort() != 0 ? grpcPort() : httpPort());
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
