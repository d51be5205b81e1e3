#include "server/admin/admin_surfaces.h"

#include <cstdlib>

#include "server/admin/port_holder.h"
#include "server/api/service.h"
#include "server/common/host_port.h"
#include "server/common/log.h"
#include "server/common/token_path.h"
#include "server/grpc/grpc_server.h"
#include "server/http/http_server.h"

namespace epmdx::admin {
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

}  // namespace

AdminSurfaces::AdminSurfaces(AdminSurfaceOptions options, http::DaemonStatus status)
    : options_(std::move(options)), status_(std::move(status)) {}

AdminSurfaces::~AdminSurfaces() {
  stop(std::chrono::milliseconds(0));
}

bool AdminSurfaces::any() const {
  return options_.grpc_listen != "off" || options_.http_listen != "off";
}

std::optional<std::string> AdminSurfaces::start(api::Service& service) {
  service_ = &service;
  if (!options_.tokens_file.empty()) {
    if (auto err = tokens_.loadFile(options_.tokens_file)) {
      return err;
    }
  } else {
    tokens_.generate();  // Published below, once the admin port that names it is bound.
  }
  if (auto err = startGrpc(service)) {
    return err;
  }
  if (auto err = startHttp(service)) {
    return err;
  }
  return options_.tokens_file.empty() ? publishToken() : std::nullopt;
}

std::optional<std::string> AdminSurfaces::startGrpc(api::Service& service) {
  if (options_.grpc_listen == "off") {
    return std::nullopt;
  }
  grpcapi::GrpcOptions go;
  go.listen = options_.grpc_listen;
  go.tls_cert_file = options_.grpc_tls_cert;
  go.tls_key_file = options_.grpc_tls_key;
  go.tls_client_ca_file = options_.grpc_tls_client_ca;
  grpc_ = std::make_unique<grpcapi::GrpcServer>(service, go);
  if (auto err = grpc_->start()) {
    grpc_.reset();
    return unbound("the gRPC admin API", "--grpc-listen", options_.grpc_listen,
                   options_.grpc_listen_explicit, *err);
  }
  std::lock_guard<std::mutex> lock(mu_);
  surfaces_.push_back({"grpc", true, ""});
  return std::nullopt;
}

std::optional<std::string> AdminSurfaces::startHttp(api::Service& service) {
  if (options_.http_listen == "off") {
    return std::nullopt;
  }
  http::HttpOptions ho;
  ho.listen = options_.http_listen;
  ho.allowed_hosts = splitHostList(options_.http_allowed_hosts);
  ho.router.anonymous_read = options_.http_anonymous_read;
  ho.router.web_root = options_.web_root;
  ho.router.version = options_.version;
  http::DaemonStatus st = status_;
  // Readiness lists the admin surfaces, then what the process adds (a daemon: its ports).
  st.surfaces = [this, more = status_.surfaces] {
    std::vector<http::SurfaceState> out;
    {
      std::lock_guard<std::mutex> lock(mu_);
      out = surfaces_;
    }
    if (more) {
      for (auto& s : more()) {
        out.push_back(std::move(s));
      }
    }
    return out;
  };
  http_ = std::make_unique<http::HttpServer>(service, ho, std::move(st));
  if (auto err = http_->start()) {
    http_.reset();
    return unbound("the HTTP API and page", "--http-listen", options_.http_listen,
                   options_.http_listen_explicit, *err);
  }
  std::lock_guard<std::mutex> lock(mu_);
  surfaces_.push_back({"http", true, ""});
  return std::nullopt;
}

std::optional<std::string> AdminSurfaces::unbound(const char* name, const char* flag,
                                                  const std::string& listen, bool explicit_address,
                                                  const std::string& error) {
  const std::string reason = error + holderOf(listen);
  if (explicit_address) {
    return reason;  // "cannot listen for gRPC on ADDRESS: ..." and who holds it.
  }
  log::warn(std::string(name) + " is off: its default address is taken",
            {{"reason", reason},
             {"hint", std::string("choose another address with ") + flag +
                          "=HOST:PORT, or turn it off with " + flag + "=off"}});
  std::lock_guard<std::mutex> lock(mu_);
  surfaces_.push_back({name, false, reason});
  return std::nullopt;
}

std::optional<std::string> AdminSurfaces::publishToken() {
  // One file per process, named after its admin port (gRPC, else HTTP), unless one was named.
  const uint16_t port = grpcPort() != 0 ? grpcPort() : httpPort();
  if (port == 0) {
    // Both default addresses were taken: nothing serves the token, so no file names it.
    log::info("no admin API is serving: no token file");
    return std::nullopt;
  }
  const auto getenv_fn = [](const char* name) -> const char* { return std::getenv(name); };
  const std::string path =
      !options_.token_out.empty() ? options_.token_out : tokenPathForPort(getenv_fn, port);
  auto published = tokens_.publishGenerated(path);
  if (!published) {
    return published.error();
  }
  log::info(published.value() == api::TokenStore::Published::Adopted
                ? "adopted the admin token of an earlier run"
                : "generated an admin token",
            {{"file", path}});
  return std::nullopt;
}

void AdminSurfaces::beginDrain() {
  if (service_ != nullptr) {
    service_->beginDrain();
  }
  if (grpc_) {
    grpc_->beginDrain();
  }
  if (http_) {
    http_->beginDrain();
  }
}

void AdminSurfaces::stop(std::chrono::milliseconds grace) {
  if (grpc_) {
    grpc_->stop(grace);
  }
  if (http_) {
    http_->stop();
  }
}

void AdminSurfaces::reloadTokens() {
  if (auto err = tokens_.reload()) {
    log::error("tokens not reloaded", {{"error", *err}});
  } else {
    log::info("tokens reloaded");
  }
}

uint16_t AdminSurfaces::grpcPort() const {
  return grpc_ ? grpc_->port() : 0;
}

uint16_t AdminSurfaces::httpPort() const {
  return http_ ? http_->port() : 0;
}

}  // namespace epmdx::admin
