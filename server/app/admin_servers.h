#pragma once

// The daemon's admin surfaces (gRPC, HTTP) as one unit for App: its api::Service (cluster
// states, instance name) on admin::AdminSurfaces, which readiness and metrics tell about
// the epmd ports.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace epmdx::app {

class App;

class AdminServers {
 public:
  explicit AdminServers(App& app);
  ~AdminServers();

  /// Binds and starts the enabled servers. @return an error message on failure.
  std::optional<std::string> start();
  /// Health turns NOT_SERVING, watch streams end with a clear status.
  void beginDrain();
  /// Stops the servers (after beginDrain()).
  void stop();
  void reloadTokens();

  uint16_t grpcPort() const;
  uint16_t httpPort() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace epmdx::app
