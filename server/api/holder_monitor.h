#pragma once

// Looks up who holds each registration's epmd connection (--holder-interval): every interval,
// one batch for every registration (one sock_diag dump, remembered holders confirmed with a
// readlink each; docs/dead-names.md has the cost), on HolderService's thread, never the epmd
// thread. The result goes into the registry as Registration::holder, so lists, gets, later
// events and the audit file carry it; a new holder (first found, or another status, pids or
// node host) is a HOLDER_CHANGED event, so watchers learn it (and the node's host) too.

#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "server/holder/holder_service.h"
#include "server/registry/registry.h"

namespace epmdx::api {

class HolderMonitor {
 public:
  HolderMonitor(registry::Registry& registry, std::chrono::milliseconds interval);
  ~HolderMonitor() = default;
  HolderMonitor(const HolderMonitor&) = delete;
  HolderMonitor& operator=(const HolderMonitor&) = delete;

  /// The last batch's cost (for the log and the README's figures).
  holder::ResolveStats lastStats() const;
  /// How many batches have been recorded (tests wait for refreshes with it).
  uint64_t batches() const;

 private:
  struct Pending {
    registry::ClusterId cluster;
    std::string name;
    registry::RegistrationId id;
  };
  std::vector<holder::ConnectionKey> connections();
  void record(std::vector<holder::Holder> holders, const holder::ResolveStats& stats);

  registry::Registry& registry_;
  mutable std::mutex mu_;
  std::vector<Pending> pending_;   // Guarded by mu_: the batch in progress, in order.
  holder::ResolveStats last_;      // Guarded by mu_.
  uint64_t batches_ = 0;           // Guarded by mu_.
  holder::HolderService service_;  // Last: its thread stops first.
};

/// A holder lookup's result as the registry keeps it.
registry::HolderFact toFact(const holder::Holder& h, int64_t now_ns);

}  // namespace epmdx::api
