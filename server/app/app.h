#pragma once

// Wires the parts: one Registry, the epmd listener on its own io_context, and the admin
// adapters (gRPC, HTTP) on their own threads. Used by main() and by in-process tests.

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "server/app/options.h"
#include "server/common/asio.h"
#include "server/epmd/listener.h"
#include "server/epmd/metrics.h"
#include "server/registry/registry.h"

namespace epmdx::app {

class AdminServers;  // gRPC + HTTP, defined in admin_servers.h.

class App {
 public:
  explicit App(Options options);
  ~App();

  /// Binds every listener. Returns an exit code when the process must stop now: 0 when
  /// another epmd holds the port (OTP's quiet exit), 1 on any other failure.
  std::optional<int> bind();

  /// Serves until shutdown; returns the exit code. Installs SIGINT/SIGTERM/SIGHUP handlers
  /// when `handle_signals` is set.
  int run(bool handle_signals);

  /// Starts the drain from any thread: health turns NOT_SERVING, watch streams end, the
  /// listeners close, registrations end with reason `reason`, run() returns `exit_code`.
  void requestShutdown(int exit_code, registry::UnregisterReason reason);

  /// Re-reads the tokens file (SIGHUP).
  void reloadTokens();

  bool draining() const { return draining_.load(); }
  bool epmdListening() const { return epmd_listening_.load(); }
  uint16_t epmdPort() const { return listener_->port(); }
  uint16_t grpcPort() const;
  uint16_t httpPort() const;
  registry::Registry& registry() { return *registry_; }
  epmd::Metrics& epmdMetrics() { return metrics_; }
  const Options& options() const { return options_; }

 private:
  void shutdownOnIoThread(int exit_code, registry::UnregisterReason reason);
  /// Stops the admin servers on admin_stopper_, waiting for them at most `budget`.
  void stopAdminWithin(std::chrono::milliseconds budget);

  Options options_;
  std::unique_ptr<registry::Registry> registry_;
  epmd::Metrics metrics_;  // Outlives io_: sessions it still holds count themselves out.
  asio::io_context io_{1};
  std::unique_ptr<epmd::Listener> listener_;  // Its IO objects go before io_.
  std::unique_ptr<AdminServers> admin_;
  std::thread admin_stopper_;  // Runs admin_->stop() after run(); joined by ~App.
  std::atomic<bool> draining_{false};
  std::atomic<bool> epmd_listening_{false};
  std::atomic<bool> shutdown_started_{false};
  int exit_code_ = 0;
  size_t systemd_fds_ = 0;
};

}  // namespace epmdx::app
