#pragma once

// grpc.health.v1.Health on the callback API. gRPC's default health service runs a synchronous
// server with a thread pool of its own that grows with Watch streams (one thread each); thread
// count is a budget here (pod PID limits), and Kubernetes probes and grpc-health-probe only need
// Check and Watch. Services: "" (the daemon) and epmdx.v1.Registry, both SERVING until
// setServing(false) (draining); any other name is NOT_FOUND (Check) or SERVICE_UNKNOWN (Watch),
// as the health protocol says.

#include <grpcpp/grpcpp.h>

#include <mutex>
#include <set>
#include <string>

#include "grpc/health/v1/health.grpc.pb.h"

namespace epmdx::grpcapi {

class HealthService final : public grpc::health::v1::Health::CallbackService {
 public:
  using Status = grpc::health::v1::HealthCheckResponse::ServingStatus;

  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* ctx,
                                  const grpc::health::v1::HealthCheckRequest* req,
                                  grpc::health::v1::HealthCheckResponse* resp) override;
  grpc::ServerWriteReactor<grpc::health::v1::HealthCheckResponse>* Watch(
      grpc::CallbackServerContext* ctx, const grpc::health::v1::HealthCheckRequest* req) override;

  /// SERVING or NOT_SERVING for every known service; every Watch hears of it.
  void setServing(bool serving);
  /// Ends every Watch stream (server shutdown).
  void shutdown();

  class Watcher;

 private:
  friend class Watcher;
  Status statusOf(const std::string& service) const;  // Requires mu_.

  mutable std::mutex mu_;
  bool serving_ = true;          // Guarded by mu_.
  bool shut_down_ = false;       // Guarded by mu_.
  std::set<Watcher*> watchers_;  // Guarded by mu_.
};

}  // namespace epmdx::grpcapi
