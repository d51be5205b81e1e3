#pragma once

// The use cases of the admin API, written once: authenticate, list, get, evict, open a
// watch, with their limits, errors, actor and log lines. The gRPC and HTTP adapters only
// translate their requests into these calls and an api::Error into their protocol.

#include <array>
#include <atomic>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "epmdx/v1/registry.pb.h"
#include "server/api/auth.h"
#include "server/api/fleet_view.h"
#include "server/api/status.h"
#include "server/api/watch_cursor.h"
#include "server/common/result.h"
#include "server/registry/registry.h"

namespace epmdx::api {

/// Limits shared by every surface (one place, so gRPC and SSE cannot disagree).
inline constexpr size_t kMaxReasonBytes = 256;
inline constexpr size_t kMaxEventsPerBatch = 256;           // Events per gRPC message / SSE write.
inline constexpr size_t kMaxNodesPerMessage = 500;          // Initial nodes per message / frame.
inline constexpr uint32_t kMaxHoldSeconds = 7 * 24 * 3600;  // A hold is a pause, not a ban.
inline constexpr uint32_t kDefaultEventsLimit = 200;        // ListEvents without a limit.
inline constexpr uint32_t kMaxEventsLimit = 1000;           // The registry lock copies this many.

/// The protocols that serve watches; each has its own cap of --max-watchers streams.
enum class Surface : uint8_t { Grpc, Sse };
inline constexpr size_t kSurfaceCount = 2;
std::string_view toString(Surface surface);

class Service;

/// A reserved watch stream: counted while it lives.
class WatchSlot {
 public:
  WatchSlot() = default;
  WatchSlot(WatchSlot&& other) noexcept : count_(std::exchange(other.count_, nullptr)) {}
  WatchSlot& operator=(WatchSlot&& other) noexcept;
  ~WatchSlot();

 private:
  friend class Service;
  explicit WatchSlot(std::atomic<size_t>* count) : count_(count) {}
  std::atomic<size_t>* count_ = nullptr;
};

struct WatchParams {
  std::optional<registry::Revision> after;  // Deliver changes after this revision.
  bool initial = false;                     // Start with the current nodes.
  std::string cluster;                      // Only this cluster ("": every cluster).
  std::string source;                       // A relay: only this source ("": every source).
};

/// An open watch: its cursor (with the initial state, if asked for, to send first), and
/// its place under the --max-watchers cap.
struct OpenedWatch {
  WatchCursor cursor;
  WatchSlot slot;
};

/// An epmd port as the daemon runs it now (for ListClusters).
struct ClusterState {
  uint16_t port = 0;
  std::vector<std::string> addresses;
  bool serving = false;
  std::string names_from = "any";    // Who may list names (NAMES, DUMP).
  std::string lookups_from = "any";  // Who may resolve names (PORT_PLEASE2).
};

class Service {
 public:
  Service(registry::Registry& registry, const TokenStore& tokens, size_t max_watchers);

  /// Checks an `authorization` value ("Bearer TOKEN") for `scope`.
  Result<Principal, Error> authenticate(std::string_view authorization, Scope scope) const;

  /// @param cluster "" for every cluster. @param source a relay's source ("" every one).
  /// @param partial_abort refuse (UNAVAILABLE) when a source it should cover is unreachable.
  Result<v1::ListNodesResponse, Error> list(std::string_view cluster, std::string_view source = {},
                                            bool partial_abort = false) const;
  /// @param cluster "" for the default cluster. On a relay, a name that two sources have
  /// needs `source` (FAILED_PRECONDITION naming them).
  Result<v1::Node, Error> get(std::string_view name, std::string_view cluster,
                              std::string_view source = {}) const;
  v1::ListClustersResponse listClusters() const;

  /// Where ListClusters learns each cluster's port and state (indexed by ClusterId).
  void setClusterStates(std::function<std::vector<ClusterState>()> states) {
    cluster_states_ = std::move(states);
  }

  /// Evicts a node for `who`, calling from `peer` (for the event's actor and the log);
  /// with hold_seconds, reserves the name too.
  Result<v1::EvictNodeResponse, Error> evict(const Principal& who, std::string_view peer,
                                             const v1::EvictNodeRequest& request);

  /// The holds in force ("" for every cluster, every source).
  Result<v1::ListHoldsResponse, Error> listHolds(std::string_view cluster,
                                                 std::string_view source = {}) const;
  /// A relay's sources (UNIMPLEMENTED on a daemon).
  Result<v1::ListSourcesResponse, Error> listSources() const;
  /// Makes this the API of a fleet relay: reads say what they cover, writes go to sources.
  void setFleet(FleetView* fleet) { fleet_ = fleet; }
  /// What ListClusters says a relay should call this daemon ("": its host name).
  void setInstanceName(std::string name) { instance_ = std::move(name); }
  const FleetView* fleet() const { return fleet_; }
  /// Lifts a hold for `who`, calling from `peer`.
  Result<v1::LiftHoldResponse, Error> liftHold(const Principal& who, std::string_view peer,
                                               const v1::LiftHoldRequest& request);

  /// The changes the history still holds (ListEvents): the newest ones, or a page of those
  /// after a revision (OUT_OF_RANGE with the window when some after it are gone).
  Result<v1::ListEventsResponse, Error> listEvents(const v1::ListEventsRequest& request) const;

  /// Opens a watch for `surface`; `wake` is called (on the registry's hub thread) after
  /// every change. Fails when draining, above the cap, or for a revision the history no
  /// longer (or not yet) holds.
  Result<OpenedWatch, Error> openWatch(Surface surface, const WatchParams& params,
                                       registry::WatchHub::WakeFn wake);

  /// The clusters' names, for the messages of an adapter (EncodedEvents).
  const ClusterNames& clusterNames() const { return names_; }

  /// From now on openWatch() refuses with UNAVAILABLE (the daemon is draining).
  void beginDrain() { draining_ = true; }
  size_t watchers(Surface surface) const { return watchers_[static_cast<size_t>(surface)].load(); }
  /// A stream of `surface` was cut for falling behind the kept history (a metric).
  void countCut(Surface surface) { cut_[static_cast<size_t>(surface)].fetch_add(1); }
  uint64_t cut(Surface surface) const { return cut_[static_cast<size_t>(surface)].load(); }

  // What the HTTP adapter reads besides the use cases, so that it never needs the registry:
  // the figures of /metrics, the clusters' labels, one wake-up for all its SSE streams.
  registry::RegistryStats stats() const;
  /// The clusters' names, indexed by ClusterId (metric labels).
  std::vector<std::string> clusterLabels() const;
  /// Calls `wake` (on the registry's hub thread) after every change while the watch lives.
  registry::WatchPtr subscribe(registry::WatchHub::WakeFn wake);

 private:
  registry::Registry& registry_;
  const ClusterNames names_;  // The registry's, copied once.
  v1::ListEventsResponse eventsResponse(const registry::Registry::EventSnapshot& snapshot) const;
  /// Checks what an evict or a lift names: a name, a reason within bounds, a known cluster
  /// ("" is the default one).
  Result<registry::ClusterId, Error> target(std::string_view name, std::string_view reason,
                                            std::string_view cluster) const;
  /// The cluster of that name ("" is `empty_means`), or INVALID_ARGUMENT naming them all.
  Result<std::optional<registry::ClusterId>, Error> resolveCluster(
      std::string_view name, std::optional<registry::ClusterId> empty_means) const;
  /// What a read of `cluster` and `source` covers. On a daemon a source is an error; on a
  /// relay a cluster name may be several sources' clusters. `default_cluster`: "" means the
  /// default cluster (a get, an evict), else every cluster.
  Result<registry::ClusterFilter, Error> select(std::string_view cluster, std::string_view source,
                                                bool default_cluster) const;
  /// The relay's registration of `name` that `cluster`/`source` select: exactly one, or
  /// NOT_FOUND, or FAILED_PRECONDITION naming the sources that have it.
  Result<registry::RegistrationPtr, Error> findOne(std::string_view name, std::string_view cluster,
                                                   std::string_view source) const;
  /// A daemon: an evict or a lift addressed to a source is a mistake.
  Result<registry::ClusterId, Error> localTarget(std::string_view name, std::string_view reason,
                                                 std::string_view cluster,
                                                 std::string_view source) const;
  Result<v1::EvictNodeResponse, Error> evictThroughFleet(const Principal& who,
                                                         std::string_view peer,
                                                         const v1::EvictNodeRequest& request);

  const TokenStore& tokens_;
  FleetView* fleet_ = nullptr;
  std::string instance_;
  const size_t max_watchers_;
  std::function<std::vector<ClusterState>()> cluster_states_;
  std::atomic<bool> draining_{false};
  std::array<std::atomic<size_t>, kSurfaceCount> watchers_{};
  std::array<std::atomic<uint64_t>, kSurfaceCount> cut_{};
};

/// A caller's address as events and logs show it, the same for every surface:
/// "127.0.0.1:53316", "[::1]:53316" (gRPC's "ipv4:"/"ipv6:" prefix dropped).
std::string peerAddress(std::string_view peer);

/// "no node named "a@host"" with a hint when the name carries a host part.
std::string notFoundMessage(std::string_view name);

}  // namespace epmdx::api
