#pragma once

// One cursor into the registry's history, the one every watcher reads through (the SSE and
// gRPC streams, the audit file, the health monitor): the initial state in chunks, the
// cluster filter, reading on past other clusters' changes, progress, and falling behind.
// It decides what to send next; the caller only encodes that and writes it. What to do when
// the watcher fell behind is the caller's: end the stream with an error (SSE, gRPC), list
// again (health monitor: restart() with a fresh snapshot), or skip to the oldest change
// kept (audit file: restart() there).
//
// Not thread-safe: a watcher reads its cursor from one thread at a time (or under its lock).

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "server/api/convert.h"
#include "server/api/fleet_view.h"
#include "server/api/status.h"
#include "server/registry/registry.h"

namespace epmdx::api {

/// What a watcher sends next (WatchCursor::next).
struct WatchStep {
  enum class Kind : uint8_t {
    Nothing,     // Caught up, or read on as far as one step may (`more`): nothing to send.
    Initial,     // A chunk of the initial state at `revision`; `complete` on the last one.
    Events,      // This watch's changes, in order; everything up to `revision` is read.
    Progress,    // Nothing of this watch changed up to `revision` (asked for).
    FellBehind,  // The history moved past the cursor (`rejection`); delivered up to `revision`.
    Coverage,    // A relay: which sources the stream covers (`coverage`), first and on change.
  };
  Kind kind = Kind::Nothing;
  registry::Revision revision = 0;
  std::span<const registry::RegistrationPtr> nodes;  // Initial.
  bool complete = false;                             // Initial: the last chunk.
  std::span<const registry::Event> events;           // Events.
  registry::WatchRejection rejection{};              // FellBehind.
  bool more = false;  // Nothing: other clusters' changes are still to read past.
  const v1::Coverage* coverage = nullptr;  // Coverage.
};

class WatchCursor {
 public:
  /// How many batches of only other clusters' changes one next() reads past before it
  /// returns (Nothing, `more`): bounds the time a caller holds its lock (16 x 256 events).
  static constexpr size_t kMaxSkippedBatches = 16;

  WatchCursor() = default;
  /// @param delivered everything up to this revision counts as sent.
  /// @param filter only these clusters' changes (every cluster's by default; on a relay,
  /// a cluster name and/or a source).
  WatchCursor(registry::WatchPtr watch, registry::Revision delivered,
              registry::ClusterFilter filter, ClusterNames names);

  /// Sends these nodes (the state at `revision()`) first, in chunks of kMaxNodesPerMessage;
  /// an empty state is still one chunk, the complete one.
  void startWithInitial(std::vector<registry::RegistrationPtr> nodes);
  /// A relay's watch: tell which sources it covers (of `source`, "" every one) first, and
  /// again whenever a source's state changes. A null fleet (a daemon) tells nothing.
  void followCoverage(const FleetView* fleet, std::string_view source) {
    fleet_ = fleet;
    coverage_source_ = std::string(source);
  }
  /// Reads on from a new watch (after falling behind): re-listed, or from the oldest kept.
  void restart(registry::WatchPtr watch, registry::Revision delivered);

  bool open() const { return watch_ != nullptr; }
  /// Unsubscribes (never from inside the watch's own wake callback).
  void close() { watch_.reset(); }
  registry::Revision revision() const { return revision_; }
  const ClusterNames& names() const { return names_; }
  bool wants(const registry::Event& e) const { return filter_.matches(e.registration->cluster); }

  /// The next chunk of the initial state (Kind::Initial), if some is still to send. Its
  /// nodes stay valid until the next call.
  std::optional<WatchStep> nextInitial();
  /// What to send next: a chunk of the initial state, else this watch's next changes (a
  /// batch at most), else a progress when `progress_due`, else nothing. The spans stay
  /// valid until the next call.
  WatchStep next(bool progress_due = false);
  /// While a write is in flight: the rejection once the history has moved past the cursor
  /// (a lock-free check first, so it is cheap on every wake-up).
  std::optional<registry::WatchRejection> stalled();

  /// The error a watch ends with when it fell behind, having delivered up to `delivered`.
  static Error fellBehindError(registry::Revision delivered, const registry::WatchRejection& r);

 private:
  WatchStep progress();

  registry::WatchPtr watch_;
  registry::Revision revision_ = 0;
  registry::ClusterFilter filter_;
  ClusterNames names_;
  std::vector<registry::RegistrationPtr> initial_;
  size_t initial_sent_ = 0;
  bool initial_pending_ = false;
  std::vector<registry::Event> batch_;
  const FleetView* fleet_ = nullptr;
  std::string coverage_source_;
  std::optional<uint64_t> coverage_sent_;  // The FleetView::coverageVersion() last told.
  v1::Coverage coverage_;
};

}  // namespace epmdx::api
