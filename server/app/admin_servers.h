#pragma once

// The admin surfaces (gRPC, HTTP) as one unit for App: start, drain, stop.

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
  /// Writes the generated admin token to its file, or adopts the token already there.
  std::optional<std::string> publishToken();

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace epmdx::app
