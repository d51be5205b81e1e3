#pragma once

// Probes every registration's VM (--probe-interval) and records each verdict in the registry,
// where a change of health becomes a HEALTH_CHANGED event like any other change. It follows
// the registry as a watcher (a cursor on its own thread): REGISTERED starts probing a node,
// UNREGISTERED stops it. The probes run on the Prober's own thread; the epmd thread never
// waits for any of it.

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "server/api/watch_cursor.h"
#include "server/probe/prober.h"
#include "server/registry/registry.h"

namespace epmdx::api {

struct HealthOptions {
  std::chrono::milliseconds interval{5000};
  /// Per probe. The daemon uses min(2 s, interval / 2), so that a node stopped right after a
  /// good probe is found unresponsive within interval + timeout < two intervals.
  std::chrono::milliseconds timeout{2000};
  /// Evict a node UNRESPONSIVE for this long (0: never), like Consul's
  /// deregister_critical_service_after.
  std::chrono::milliseconds evict_after{0};
};

class HealthMonitor {
 public:
  HealthMonitor(registry::Registry& registry, HealthOptions options);
  ~HealthMonitor();
  HealthMonitor(const HealthMonitor&) = delete;
  HealthMonitor& operator=(const HealthMonitor&) = delete;

  /// The probe target of a registration: the address it registered from, its port.
  static probe::ProbeTarget targetOf(const registry::Registration& r);

 private:
  struct Target {
    registry::ClusterId cluster;
    std::string name;
  };
  void run();
  /// Starts over from the registry as it is now (at start, and after falling behind).
  void relist();
  /// Follows every change there is to read.
  void drain();
  void onEvent(const registry::Event& e);
  void follow(const registry::Registration& r);
  void onResult(uint64_t id, const probe::ProbeResult& result);
  void maybeEvict(const Target& target, registry::RegistrationId id);

  registry::Registry& registry_;
  const HealthOptions options_;
  std::mutex targets_mu_;
  std::unordered_map<registry::RegistrationId, Target> targets_;  // Guarded by targets_mu_.
  std::unique_ptr<probe::Prober> prober_;
  WatchCursor cursor_;  // Read on thread_ (and in the constructor, before it starts).
  std::mutex mu_;
  std::condition_variable cv_;
  bool pending_ = false;  // Guarded by mu_.
  bool stop_ = false;     // Guarded by mu_.
  std::thread thread_;
};

}  // namespace epmdx::api
