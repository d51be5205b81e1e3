#pragma once

// The single source of truth: which names are registered, by which connection, with which
// port, versions, extra bytes and creation. Every adapter (the epmd listener, gRPC, HTTP) is
// a thin layer over this class. It knows nothing of sockets or protocols.
//
// Thread-safety: every public method may be called from any thread. One mutex guards the
// state; it is held for microseconds, never across I/O, and no callback runs under it.
// Watchers and owners are called only after the lock is released.
//
// One Registry serves every epmd port of the daemon. Each port is a cluster with a name
// table of its own (a name is unique within its cluster), its own creation numbers and
// remembered names; revisions are one sequence for the whole daemon, so a watcher of all
// clusters sees one ordered stream and a watcher of one cluster is a cursor that skips.

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "server/common/result.h"
#include "server/registry/clock.h"
#include "server/registry/cluster_table.h"
#include "server/registry/creation_pool.h"
#include "server/registry/history.h"
#include "server/registry/types.h"
#include "server/registry/watch_hub.h"

namespace epmdx::registry {

struct RegistryOptions {
  // The clusters' names: ClusterId i is cluster_names[i]; 0 is the default cluster.
  std::vector<std::string> cluster_names = {"default"};
  // How many clusters addCluster() may bring the table to (a fleet relay: one per source and
  // cluster); 0: just cluster_names.
  size_t max_clusters = 0;
  size_t history_size = 16384;      // Events kept for watchers to resume from.
  size_t max_unreg_records = 1000;  // OTP's MAX_UNREG_COUNT (5 with -d).
  size_t max_nodes = 1000000;       // Registrations beyond this get an error reply.
  bool async_notify = true;         // Fan out to watchers on the hub's thread.
  // The revision before the first change. The daemon uses its start time in microseconds,
  // so revisions keep growing across restarts and a client holding a revision from an
  // earlier run is always told to list again instead of resuming in the wrong history.
  Revision initial_revision = 0;
  const Clock* clock = nullptr;  // nullptr: the system clock.
  // ALIVE2 for a name whose holder is UNRESPONSIVE (its probes fail) evicts the holder
  // (reason TakenOver) and registers the newcomer. Off: OTP's duplicate-name refusal.
  bool takeover_unresponsive = false;
};

enum class RegisterError {
  NameTooLong,          // Over 1020 bytes or 255 characters.
  InvalidNameEncoding,  // Not valid UTF-8.
  ExtraTooLong,         // Over 1020 bytes.
  NameInUse,            // Registered by another connection (byte-exact compare).
  TooManyNodes,         // RegistryOptions::max_nodes reached.
  NameHeld,             // A hold reserves the name (after an eviction): OTP's duplicate reply.
};
inline constexpr size_t kRegisterErrorCount = static_cast<size_t>(RegisterError::NameHeld) + 1;
/// A snake_case name: the metric label and the log's reason.
std::string_view toString(RegisterError e);

enum class EvictError { NotFound, PreconditionFailed };

/// What Registry::evict() is asked to remove, and why.
struct EvictRequest {
  std::string_view name = {};
  ClusterId cluster = kDefaultCluster;
  std::optional<RegistrationId> expected_id =
      std::nullopt;  // Only if this registration still holds the name.
  UnregisterReason reason = UnregisterReason::Evicted;
  std::string actor = {};   // Who asked (the UNREGISTERED event's note, and the hold's).
  std::string detail = {};  // Why.
  std::optional<std::chrono::nanoseconds> hold_for =
      std::nullopt;  // Reserve the name for this long.
};

/// What an eviction removed, and the revision of its UNREGISTERED event.
struct Evicted {
  RegistrationPtr registration;
  Revision revision = 0;
  HoldPtr hold;  // The hold placed with it, if one was asked for (its HELD event is next).
};

enum class HoldError { NotFound };

/// A hold that ended, and the revision of its HOLD_LIFTED / HOLD_EXPIRED event.
struct EndedHold {
  HoldPtr hold;
  Revision revision = 0;
};

/// Why a watch could not start or had to end: the client must list again.
struct WatchRejection {
  enum class Code { Compacted, FutureRevision } code;
  Revision oldest_retained;
  Revision current;
};

/// Counters kept by the registry itself (exported as metrics).
struct RegistryStats {
  uint64_t registrations = 0;
  std::array<uint64_t, kRegisterErrorCount> register_errors{};     // By RegisterError.
  std::array<uint64_t, kUnregisterReasonCount> unregistrations{};  // By UnregisterReason.
  size_t nodes = 0;
  std::vector<size_t> nodes_by_cluster;            // Indexed by ClusterId.
  std::vector<uint64_t> registrations_by_cluster;  // Indexed by ClusterId.
  size_t watchers = 0;
  size_t holds = 0;
  std::array<size_t, kHealthStatusCount> nodes_by_health{};   // Now, by HealthStatus.
  std::array<uint64_t, kHealthStatusCount> health_changes{};  // Changes into each status.
  uint64_t holder_changes = 0;                                // HOLDER_CHANGED events.
  uint64_t holds_placed = 0;
  uint64_t holds_lifted = 0;
  uint64_t holds_expired = 0;
  Revision revision = 0;
  Revision oldest_retained = 0;
};

class Registry;

/// A cursor into the shared event history: no events are copied per watcher until it reads.
/// Destroying the Watch unsubscribes. Must be destroyed before the Registry, and never from
/// inside its own wake callback.
class Watch {
 public:
  ~Watch();
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;

  /// Appends up to `max` events from the cursor on and advances it. Returns the rejection
  /// (Compacted) if the history has moved past the cursor: the watcher fell too far behind.
  Result<size_t, WatchRejection> poll(size_t max, std::vector<Event>& out);

  /// The revision of the next event this watch will return.
  Revision nextRevision() const { return next_.load(); }

  /// True when the history has moved past the cursor: the next poll() will be rejected.
  /// Lock-free, so a watcher whose write is stalled can check it on every wake-up.
  bool fellBehind() const;

 private:
  friend class Registry;
  Watch(Registry& registry, Revision next) : registry_(registry), next_(next) {}

  Registry& registry_;
  std::atomic<Revision> next_;
  uint64_t token_ = 0;
};
using WatchPtr = std::unique_ptr<Watch>;

class Registry {
 public:
  explicit Registry(RegistryOptions options = {});
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  /// Registers a node (ALIVE2_REQ), with OTP's checks in OTP's order.
  /// @param owner notified to close its connection when the registration is removed by
  ///        anything other than that connection (stop, evict, kill). May be empty.
  Result<RegistrationPtr, RegisterError> add(NodeInfo node, Origin origin,
                                             std::weak_ptr<RegistrationOwner> owner = {},
                                             ClusterId cluster = kDefaultCluster);

  /// Removes exactly this registration if it is still live (its connection closed).
  /// A no-op if it was already removed (stopped or evicted). Does not call the owner.
  bool remove(const Registration& registration, UnregisterReason reason);

  /// Removes the registration of `request.name` and tells its owner to close the connection
  /// (STOP_REQ, admin eviction). With `expected_id`, removes it only if that registration
  /// still holds the name, so that a node that re-registered a moment ago is never evicted.
  /// With `hold_for`, the name is also reserved for that long, atomically with the
  /// eviction (no registration can slip in between): ALIVE2 for it gets NameHeld.
  Result<Evicted, EvictError> evict(EvictRequest request);

  /// Ends the hold on `name` before its time (HOLD_LIFTED, with the caller's note).
  Result<EndedHold, HoldError> liftHold(std::string_view name, ClusterId cluster,
                                        std::string actor = {}, std::string detail = {});

  /// Ends every hold whose time has come (HOLD_EXPIRED each). Returns them.
  std::vector<EndedHold> expireHolds();

  /// Calls `placed` with the new hold's expiry (registry clock, ns) after each hold evict()
  /// places, outside the registry's lock, on the evicting thread: a hold is a change of the
  /// registry, so whoever ends holds on time (HoldExpiry) learns of it here. One listener;
  /// an empty function removes it, and returns only once no call to the old one is running.
  void onHoldPlaced(std::function<void(int64_t expires_at_ns)> placed);

  /// When the next hold expires (registry clock, ns), if any hold is in force.
  std::optional<int64_t> nextHoldExpiry() const;

  struct HoldSnapshot {
    std::vector<HoldPtr> holds;  // Soonest to expire first.
    Revision revision = 0;
  };
  /// The holds in force, of every cluster or one.
  HoldSnapshot holds(const ClusterFilter& only = {}) const;

  struct EventSnapshot {
    std::vector<Event> events;     // Oldest first.
    Revision revision = 0;         // The revision this snapshot reflects.
    Revision oldest_retained = 0;  // The oldest revision the history holds (revision + 1: none).
  };
  /// The newest `max` kept events, of every cluster or one.
  /// Holds the lock for the copy of at most `max` events (shared pointers, no node data) and
  /// a scan of the kept history when filtering by cluster.
  EventSnapshot recentEvents(size_t max, const ClusterFilter& only = {}) const;

  /// The first `max` kept events with a revision above `after` (a page; the next one starts
  /// after its last revision), of every cluster or one. When `after + 1` is below the
  /// snapshot's oldest_retained, events after `after` are gone: the caller must say so.
  EventSnapshot eventsAfter(size_t max, Revision after, const ClusterFilter& only = {}) const;

  /// The registry's clock, wall time in ns (holds are measured on it).
  int64_t nowNanos() const { return clock_.nowNanos(); }

  /// Records a probe's verdict on registration `id` (of `name` in `cluster`): the node's
  /// health gets the probe's time, failures and error; a change of status is a
  /// HEALTH_CHANGED event. A no-op if that registration is gone. @return the event's revision
  /// when the status changed.
  std::optional<Revision> recordProbe(ClusterId cluster, std::string_view name, RegistrationId id,
                                      bool alive, std::string error);

  /// Records who holds registration `id` now. Publishes a copy of the registration only when
  /// the facts changed (HolderFact::sameAs), and appends a HOLDER_CHANGED event only when
  /// the holder's identity changed (HolderFact::sameHolder: status, pids, node host), so a
  /// look that finds the same holder (or the same one in another process state) is no
  /// event. The first fact recorded for a registration is a change. A no-op if that
  /// registration is gone. @return the event's revision when there was one.
  std::optional<Revision> recordHolder(ClusterId cluster, std::string_view name, RegistrationId id,
                                       std::shared_ptr<const HolderFact> holder);

  /// A fleet relay: applies a change one of its sources made, as the same kind of change
  /// with the relay's next revision. `e.registration` is already in the relay's terms (its
  /// cluster, `relayed` facts, the source's id); `e.note` and `e.hold` are kept. REGISTERED
  /// over a name still held by another registration first ends that one (SourceResynced).
  /// @return the revision, or nullopt when it changes nothing the relay holds (the
  /// unregistration or update of a registration it does not hold).
  std::optional<Revision> relay(const Event& e);
  /// Wakes every watcher with no change (a relay: a source's state changed, which a watch
  /// tells as coverage).
  void nudge() { hub_.notify(); }

  /// Removes every registration (shutdown), or those of one cluster (KILL_REQ on its port),
  /// and closes their owners.
  size_t removeAll(UnregisterReason reason, std::optional<ClusterId> only = std::nullopt);

  /// The registration holding `name` in `cluster`, or null. Byte-exact match.
  RegistrationPtr find(std::string_view name, ClusterId cluster = kDefaultCluster) const;

  struct Snapshot {
    std::vector<RegistrationPtr> nodes;  // Newest registration first, as OTP lists them.
    Revision revision = 0;               // The revision this snapshot reflects.
  };
  /// Every cluster's nodes, or one cluster's.
  Snapshot list(const ClusterFilter& only = {}) const;

  /// Names registered before and remembered for their creation (DUMP_REQ), oldest first.
  std::vector<CreationPool::Record> unusedNames(ClusterId cluster = kDefaultCluster) const;

  /// Starts a watch whose first event has revision `start` (a List's revision + 1 resumes
  /// with no gap and no repeat). `start` 0 means "from the next change". An empty `wake`
  /// subscribes to nothing: for cursors that one shared subscription wakes together.
  /// Rejects a revision older than the history (Compacted) or beyond the next one.
  Result<WatchPtr, WatchRejection> watch(Revision start, WatchHub::WakeFn wake);

  /// A snapshot and a watch that starts right after it, taken atomically.
  std::pair<Snapshot, WatchPtr> listAndWatch(WatchHub::WakeFn wake);

  Revision revision() const;
  size_t size(std::optional<ClusterId> only = std::nullopt) const;
  RegistryStats stats() const;
  const RegistryOptions& options() const { return options_; }
  size_t clusterCount() const { return clusters_->size(); }
  /// The cluster table (names, sources, staleness), shared with the adapters.
  std::shared_ptr<ClusterTable> clusters() const { return clusters_; }
  /// Adds the cluster `name` of `source` (a fleet relay learning a source's cluster), or
  /// finds it. nullopt when the table is full (RegistryOptions::max_clusters).
  std::optional<ClusterId> addCluster(std::string_view name, std::string_view source);
  /// The cluster's name (stable for the registry's life).
  const std::string& clusterName(ClusterId cluster) const;
  /// The cluster of that name, if any.
  std::optional<ClusterId> findCluster(std::string_view name) const;

 private:
  friend class Watch;
  // One per live registration. Linked newest-first through prev/next: an intrusive list
  // costs no allocation per node, and memory per registration is a product figure.
  struct Entry {
    RegistrationPtr registration;  // The current version (health changes publish copies).
    std::weak_ptr<RegistrationOwner> owner;
    Entry* newer = nullptr;
    Entry* older = nullptr;
  };

  // All *Locked methods require mu_.
  Revision appendLocked(EventType type, UnregisterReason reason, RegistrationPtr registration,
                        std::string actor, std::string detail, HoldPtr hold = nullptr);
  std::shared_ptr<RegistrationOwner> eraseLocked(ClusterId cluster, std::string_view name,
                                                 UnregisterReason reason, std::string actor,
                                                 std::string detail);
  Result<size_t, WatchRejection> readLocked(Revision& cursor, size_t max,
                                            std::vector<Event>& out) const;
  Snapshot listLocked(const ClusterFilter& only) const;
  // add()'s steps: the checks that need the lock (name in use or taken over, held, too
  // many nodes), the takeover of an unresponsive holder, and the insertion itself.
  std::optional<RegisterError> admitLocked(ClusterId cluster, const NodeInfo& node,
                                           const Origin& origin,
                                           std::shared_ptr<RegistrationOwner>& replaced);
  std::shared_ptr<RegistrationOwner> takeOverLocked(const Registration& old, const Origin& origin);
  /// True if a hold in force reserves the name; ends a hold whose time has come.
  bool heldLocked(ClusterId cluster, const std::string& name);
  RegistrationPtr insertLocked(ClusterId cluster, NodeInfo node, Origin origin,
                               std::weak_ptr<RegistrationOwner> owner);
  ClusterId checkCluster(ClusterId cluster) const;
  std::optional<Revision> relayLocked(const Event& e);
  void insertRelayedLocked(const Event& e);
  // The map's key (cluster, name view) and the Entry it maps to.
  struct Key;
  /// Publishes `copy` (same id) as the entry at `it`; the key is re-pointed at the copy's
  /// name (extract/insert keeps the node, so Entry pointers stay valid).
  template <class It>
  void replaceLocked(It it, RegistrationPtr copy);
  /// Reserves the evicted registration's name for `hold_for` (a HELD event).
  HoldPtr placeHoldLocked(const RegistrationPtr& registration, std::chrono::nanoseconds hold_for,
                          std::string actor, std::string reason);
  /// Ends the hold at `it` with a HOLD_LIFTED or HOLD_EXPIRED event.
  EndedHold endHoldLocked(std::map<std::pair<ClusterId, std::string>, HoldPtr>::iterator it,
                          EventType type, std::string actor, std::string detail);

  // A name is unique within its cluster. The view is the registration's own name (stable:
  // registrations are immutable).
  struct Key {
    ClusterId cluster;
    std::string_view name;
    bool operator==(const Key& o) const { return cluster == o.cluster && name == o.name; }
  };
  struct KeyHash {
    size_t operator()(const Key& k) const {
      return std::hash<std::string_view>()(k.name) ^ (static_cast<size_t>(k.cluster) * 0x9e3779b9u);
    }
  };

  const RegistryOptions options_;
  SystemClock system_clock_;
  const Clock& clock_;

  mutable std::mutex mu_;
  // Map nodes do not move, so Entry pointers stay valid until erased.
  std::unordered_map<Key, Entry, KeyHash> by_name_;  // Guarded by mu_.
  Entry* newest_ = nullptr;                          // Guarded by mu_.
  Entry* oldest_ = nullptr;                          // Guarded by mu_.
  std::shared_ptr<ClusterTable> clusters_;           // Grows only by addCluster().
  std::vector<CreationPool> creations_;              // Per cluster. Guarded by mu_.
  History history_;                                  // Guarded by mu_.
  Revision revision_ = 0;                            // Guarded by mu_.
  RegistrationId next_id_ = 1;                       // Guarded by mu_.
  RegistryStats counters_;                           // Guarded by mu_.
  // Names reserved after evictions. Usually empty: add() looks here only when it is not.
  std::map<std::pair<ClusterId, std::string>, HoldPtr> holds_;  // Guarded by mu_.
  // history_.oldestRetained(), published for Watch::fellBehind() without the lock.
  std::atomic<Revision> oldest_retained_{0};

  // Held while the hold-placed listener runs, so that replacing it waits for a running call.
  std::mutex hold_listener_mu_;
  std::function<void(int64_t)> hold_placed_;  // Guarded by hold_listener_mu_.

  WatchHub hub_;  // Last: its thread stops first on destruction.
};

}  // namespace epmdx::registry
