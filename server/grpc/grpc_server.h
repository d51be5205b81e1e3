#pragma once

// The gRPC admin listener: epmdx.v1.Registry, grpc.health.v1.Health (SERVING while the
// epmd listener is up) and server reflection, on its own address, optionally over TLS.

#include <grpcpp/grpcpp.h>

#include <memory>
#include <optional>
#include <string>

#include "server/api/service.h"
#include "server/grpc/fleet_service.h"
#include "server/grpc/health_service.h"
#include "server/grpc/registry_service.h"

namespace epmdx::grpcapi {

struct GrpcOptions {
  std::string listen = "127.0.0.1:4370";  // HOST:PORT; port 0 picks one.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;  // Set: clients must present a certificate it signed.
};

class GrpcServer {
 public:
  GrpcServer(api::Service& api, GrpcOptions options);
  ~GrpcServer();

  /// Binds and starts. @return an error message on failure.
  std::optional<std::string> start();
  /// Health turns NOT_SERVING and every watch stream ends with UNAVAILABLE.
  void beginDrain();
  /// Stops serving; calls still running get until `deadline`.
  void stop(std::chrono::milliseconds grace);
  uint16_t port() const { return port_; }
  RegistryService& service() { return *service_; }

 private:
  GrpcOptions options_;
  std::unique_ptr<RegistryService> service_;
  std::unique_ptr<FleetService> fleet_;  // A fleet relay's only.
  HealthService health_;                 // Outlives server_ (declared before it).
  std::unique_ptr<grpc::Server> server_;
  uint16_t port_ = 0;
  bool stopped_ = false;
};

}  // namespace epmdx::grpcapi
