#pragma once

// Wires the parts: one Registry, an epmd listener per cluster on one io_context of their own,
// and the admin adapters (gRPC, HTTP) on their own threads. Used by main() and by in-process
// tests.

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "server/api/audit_log.h"
#include "server/api/health_monitor.h"
#include "server/api/hold_expiry.h"
#include "server/api/holder_monitor.h"
#include "server/api/service.h"

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
  /// Re-reads the access file (SIGHUP); a broken file keeps the policies in force.
  void reloadAccess();

  bool draining() const { return draining_.load(); }
  bool epmdListening() const { return epmd_listening_.load(); }
  /// The default cluster's epmd port.
  uint16_t epmdPort() const { return clusters_[0]->listener->port(); }
  /// Cluster `i`'s epmd port (0 = the default cluster, then --cluster in order).
  uint16_t clusterPort(size_t i) const { return clusters_.at(i)->listener->port(); }
  /// Each cluster's port, addresses and state (safe from any thread).
  std::vector<api::ClusterState> clusterStates() const;
  uint16_t grpcPort() const;
  uint16_t httpPort() const;
  registry::Registry& registry() { return *registry_; }
  /// Null with --holder-interval=0.
  const api::HolderMonitor* holderMonitor() const { return holders_.get(); }
  epmd::Metrics& epmdMetrics() { return metrics_; }
  const Options& options() const { return options_; }

 private:
  void shutdownOnIoThread(int exit_code, registry::UnregisterReason reason);
  /// KILL_REQ on cluster `i`'s port: that cluster closes; the daemon exits with the last.
  void killCluster(registry::ClusterId i, const std::string& peer);
  /// Removes the generated token files of daemons that stopped (one per port ever used).
  void removeStaleTokenFilesOnce();
  std::optional<int> bindCluster(size_t i);
  /// Builds every cluster's policy (options, then the access file) and puts it in force.
  std::optional<std::string> applyAccess();
  /// Stops the admin servers on admin_stopper_, waiting for them at most `budget`.
  void stopAdminWithin(std::chrono::milliseconds budget);

  Options options_;
  std::unique_ptr<registry::Registry> registry_;
  epmd::Metrics metrics_;  // Outlives io_: sessions it still holds count themselves out.
  asio::io_context io_{1};
  struct Cluster {
    std::unique_ptr<epmd::Listener> listener;  // Its IO objects go before io_.
    std::vector<std::string> endpoints;        // Kept after the port closes.
    epmd::AccessPolicyPtr policy;              // In force; guarded by clusters_mu_.
    std::atomic<bool> serving{false};
  };
  std::vector<std::unique_ptr<Cluster>> clusters_;  // Set once in the constructor.
  mutable std::mutex clusters_mu_;  // Guards endpoints (written by bind, read by the APIs).
  std::unique_ptr<api::HealthMonitor> health_;   // Null with --probe-interval=0.
  std::unique_ptr<api::HolderMonitor> holders_;  // Null with --holder-interval=0.
  std::unique_ptr<api::AuditLog> audit_;         // Before admin_: audits its evictions.
  std::unique_ptr<api::HoldExpiry> hold_expiry_;
  std::unique_ptr<AdminServers> admin_;
  std::thread admin_stopper_;  // Runs admin_->stop() after run(); joined by ~App.
  std::atomic<bool> draining_{false};
  std::atomic<bool> epmd_listening_{false};
  std::atomic<bool> shutdown_started_{false};
  int exit_code_ = 0;
  size_t systemd_fds_ = 0;
};

}  // namespace epmdx::app
