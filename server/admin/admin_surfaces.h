#pragma once

// The admin surfaces of one process (the gRPC API and the HTTP API with its page) around one
// api::Service: their tokens, binding, the generated token's file, drain and stop. The daemon
// (app/admin_servers) and the fleet relay (fleet/relay_main) differ only in the Service they
// hand in and in what their readiness and metrics add, so both start their surfaces here.

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "server/api/auth.h"
#include "server/http/router.h"

namespace epmdx::api {
class Service;
}
namespace epmdx::grpcapi {
class GrpcServer;
}
namespace epmdx::http {
class HttpServer;
}

namespace epmdx::admin {

struct AdminSurfaceOptions {
  std::string grpc_listen = "off";  // HOST:PORT, or "off".
  // False: the address is the default one, and a taken default leaves the surface off with a
  // warning (the epmd port is the daemon's job) instead of failing the start.
  bool grpc_listen_explicit = true;
  std::string grpc_tls_cert, grpc_tls_key, grpc_tls_client_ca;
  std::string http_listen = "off";
  bool http_listen_explicit = true;
  std::string http_allowed_hosts;  // Comma-separated (--http-allowed-hosts).
  bool http_anonymous_read = false;
  std::string web_root;
  std::string version;
  std::string tokens_file;  // Empty: a token is generated and published (token_out or by port).
  std::string token_out;
};

class AdminSurfaces {
 public:
  /// `status`: what readiness and /metrics add (its `surfaces` comes after the admin ones).
  AdminSurfaces(AdminSurfaceOptions options, http::DaemonStatus status);
  ~AdminSurfaces();
  AdminSurfaces(const AdminSurfaces&) = delete;
  AdminSurfaces& operator=(const AdminSurfaces&) = delete;

  /// True when gRPC or HTTP is on.
  bool any() const;
  /// The store the Service checks tokens against (filled by start()).
  api::TokenStore& tokens() { return tokens_; }

  /// Loads the tokens file (or generates a token), binds the enabled surfaces on `service`
  /// and publishes a generated token. @return an error message on failure.
  std::optional<std::string> start(api::Service& service);
  /// The Service refuses new work, health turns NOT_SERVING, watch streams end clearly.
  void beginDrain();
  /// Stops the servers (after beginDrain()), giving gRPC calls `grace`.
  void stop(std::chrono::milliseconds grace);
  void reloadTokens();

  uint16_t grpcPort() const;
  uint16_t httpPort() const;

 private:
  std::optional<std::string> startGrpc(api::Service& service);
  std::optional<std::string> startHttp(api::Service& service);
  /// A surface that could not bind: an error when its address was asked for, else it is
  /// left off and the log says how to choose another.
  std::optional<std::string> unbound(const char* name, const char* flag, const std::string& listen,
                                     bool explicit_address, const std::string& error);
  /// Writes the generated token to its file, or adopts the token already there.
  std::optional<std::string> publishToken();

  const AdminSurfaceOptions options_;
  http::DaemonStatus status_;
  api::TokenStore tokens_;
  api::Service* service_ = nullptr;
  std::unique_ptr<grpcapi::GrpcServer> grpc_;
  std::unique_ptr<http::HttpServer> http_;
  std::mutex mu_;
  std::vector<http::SurfaceState> surfaces_;  // Guarded by mu_.
};

}  // namespace epmdx::admin
