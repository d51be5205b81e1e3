#pragma once

// The facts the registry owns. Plain values: no sockets, no gRPC, no HTTP.

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace epmdx::registry {

using Revision = uint64_t;
using RegistrationId = uint64_t;
/// A cluster: an epmd port with a name table of its own. An index into the daemon's
/// cluster table; 0 is the default cluster (OTP's -port / ERL_EPMD_PORT).
using ClusterId = uint16_t;
inline constexpr ClusterId kDefaultCluster = 0;

/// OTP's limits (erts/epmd/src/epmd_int.h): a name is at most 255 characters and
/// MAXSYMLEN (1020) bytes; the extra field is at most MAXSYMLEN bytes.
inline constexpr size_t kMaxNameBytes = 1020;
inline constexpr int kMaxNameChars = 255;
inline constexpr size_t kMaxExtraBytes = 1020;

/// What a node announces in ALIVE2_REQ, kept byte for byte.
struct NodeInfo {
  std::string name;  // UTF-8, no NUL.
  uint16_t port = 0;
  uint8_t node_type = 0;  // 77 'M' normal, 72 'H' hidden; not validated, as in OTP.
  uint8_t protocol = 0;   // 0 = TCP/IPv4; not validated, as in OTP.
  uint16_t highest_version = 0;
  uint16_t lowest_version = 0;
  std::string extra;  // Binary-safe.
};

/// Where a registration came from: the connection that holds it.
struct Origin {
  std::string peer_address;        // "127.0.0.1:50000" or "[::1]:50000".
  int32_t connection_handle = -1;  // The socket descriptor, shown by DUMP_REQ ("fd = N").
  std::string local_address;       // The daemon's side: "127.0.0.1:4369" (for the holder).
};

/// Is the node's VM alive, as the liveness probe last found it (docs/dead-names.md).
enum class HealthStatus : uint8_t { Unknown, Alive, Unresponsive };
inline constexpr size_t kHealthStatusCount = 3;
std::string_view toString(HealthStatus status);  // "unknown", "alive", "unresponsive".

struct Health {
  HealthStatus status = HealthStatus::Unknown;
  int64_t since_ns = 0;       // When the status last changed (the registration, at first).
  int64_t last_probe_ns = 0;  // 0: never probed.
  uint32_t consecutive_failures = 0;
  std::string last_error;  // Of the last failed probe.
};

/// Who holds a registration's connection on this host (docs/dead-names.md), as last looked up.
/// Plain values: the registry does not depend on how it was found.
struct HolderFact {
  enum class Status : uint8_t { Found, NotOnHost, NotVisible, PermissionDenied, Error };
  struct Process {
    int32_t pid = 0;
    uint32_t uid = 0;
    std::string user;
    std::string command;       // comm.
    std::string command_line;  // argv joined with spaces.
    std::string state;         // "running", "sleeping", "stopped", "zombie", ...
    bool operator==(const Process&) const = default;
  };
  Status status = Status::Error;
  std::string reason;  // Why it cannot be seen (not Found).
  std::vector<Process> processes;
  int64_t checked_ns = 0;
  // The host of the node's Erlang name its holder's command line gives (-sname/-name), read
  // off the epmd thread when the holder is recorded; empty when none names this node.
  std::string node_host;

  /// The same facts (the time aside).
  bool sameAs(const HolderFact& o) const {
    return status == o.status && reason == o.reason && processes == o.processes &&
           node_host == o.node_host;
  }

  /// The same holder: status, the set of pids and the node host. A process's state, the
  /// reason's wording and the check time may differ (a HOLDER_CHANGED event needs more).
  bool sameHolder(const HolderFact& o) const {
    if (status != o.status || node_host != o.node_host || processes.size() != o.processes.size()) {
      return false;
    }
    std::vector<int32_t> a;
    std::vector<int32_t> b;
    for (size_t i = 0; i < processes.size(); ++i) {
      a.push_back(processes[i].pid);
      b.push_back(o.processes[i].pid);
    }
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    return a == b;
  }
};

/// What a fleet relay keeps of a registration one of its sources holds, beyond what the
/// relay's own Registration says: the facts only the source could know.
struct Relayed {
  std::string host;              // The source's Node.host.
  uint32_t creation = 0;         // The creation the source gave the node.
  uint64_t source_revision = 0;  // The source's create_revision.
};

/// One live registration. Immutable once published; shared by the history and adapters. A
/// change of health publishes a copy with the same id (see Registry::recordProbe).
struct Registration {
  NodeInfo node;
  Origin origin;
  RegistrationId id = 0;  // Unique for the life of the daemon, never reused.
  ClusterId cluster = kDefaultCluster;
  uint32_t creation_counter = 0;  // OTP's cr_counter.
  int64_t registered_at_ns = 0;   // Unix epoch, nanoseconds.
  Revision revision = 0;          // The revision of the REGISTERED event.
  // Out of line, null until probed or looked up: most daemons run without probes, and
  // memory per registration is a product figure.
  std::shared_ptr<const Health> health_facts;  // Null: HealthStatus::Unknown.
  std::shared_ptr<const HolderFact> holder;    // Null until looked up (--holder-interval).
  // A fleet relay's copy of a source's registration (null on a daemon). `id` is then the
  // source's registration id: the one an eviction through the relay names.
  std::shared_ptr<const Relayed> relayed;

  /// The node's health (Unknown, since 0, before the first probe).
  const Health& health() const {
    static const Health kUnknown;
    return health_facts ? *health_facts : kUnknown;
  }

  /// The creation the node is told, exactly as OTP's get_creation(): the 32-bit counter
  /// for nodes speaking distribution version 6 or later, else a value in 1..3.
  uint32_t creation() const {
    if (relayed) {
      return relayed->creation;
    }
    return node.highest_version >= 6 ? creation_counter : creation_counter % 3 + 1;
  }
};
using RegistrationPtr = std::shared_ptr<const Registration>;

/// REGISTERED and UNREGISTERED are a name's registrations; the hold events are the
/// reservations an eviction may leave behind (see Hold).
/// HEALTH_CHANGED carries the registration with its new health; HOLDER_CHANGED the
/// registration with its new holder (and the node host read from it).
enum class EventType : uint8_t {
  Registered,
  Unregistered,
  Held,
  HoldLifted,
  HoldExpired,
  HealthChanged,
  HolderChanged
};

enum class UnregisterReason : uint8_t {
  Unspecified,
  ConnectionClosed,  // The node's connection closed, failed, or sent unexpected data.
  Stopped,           // STOP_REQ (epmd -stop NAME).
  Killed,            // KILL_REQ (epmd -kill) ended the daemon.
  Evicted,           // An admin API call.
  Shutdown,          // The daemon stopped on a signal.
  TakenOver,         // A new registration took the name of an unresponsive node (takeover).
  AutoEvicted,       // Unresponsive for longer than --evict-unresponsive-after.
  SourceGone,        // A relay: the node's source left discovery and its grace period ended.
  SourceResynced,    // A relay: listed again, the source no longer had the node.
};
inline constexpr size_t kUnregisterReasonCount =
    static_cast<size_t>(UnregisterReason::SourceResynced) + 1;

std::string_view toString(UnregisterReason reason);
std::string_view toString(EventType type);

/// Who caused a change and why (evictions, STOP_REQ). Most events have none, so it is kept
/// out of line: the history holds one Event per change and its size is memory per node.
struct EventNote {
  std::string actor;   // The caller's identity.
  std::string detail;  // The caller's reason.
};

/// A name kept reserved in its cluster after an eviction, so that the evicted node (which
/// re-registers by itself) gets OTP's duplicate-name refusal until the hold ends or is
/// lifted. Immutable once published.
struct Hold {
  std::string name;
  ClusterId cluster = kDefaultCluster;
  int64_t created_at_ns = 0;
  int64_t expires_at_ns = 0;     // Registry clock (wall time, Unix epoch).
  std::string actor;             // Who placed it.
  std::string reason;            // Why (the eviction's reason).
  RegistrationPtr registration;  // The evicted registration: the name's last holder.
  Revision revision = 0;         // The revision of the HELD event.
};
using HoldPtr = std::shared_ptr<const Hold>;

/// One change. `registration` is the registration that appeared or went away; for the hold
/// events, the registration the hold was placed over (`hold` says the rest).
struct Event {
  Revision revision = 0;
  EventType type = EventType::Registered;
  UnregisterReason reason = UnregisterReason::Unspecified;
  RegistrationPtr registration;
  int64_t time_ns = 0;
  std::shared_ptr<const EventNote> note;  // May be null.
  HoldPtr hold;                           // Only for the hold events.

  std::string_view actor() const { return note ? std::string_view(note->actor) : ""; }
  std::string_view detail() const { return note ? std::string_view(note->detail) : ""; }
};

/// Implemented by whatever holds a registration's connection (the epmd session). The
/// registry calls it, outside its lock, after it removed the registration for a reason that
/// did not come from the connection itself (STOP_REQ, eviction, kill). The call must not
/// block: post the close to the connection's own executor.
class RegistrationOwner {
 public:
  virtual ~RegistrationOwner() = default;
  virtual void closeRegistration() = 0;
};

}  // namespace epmdx::registry
