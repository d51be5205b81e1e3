#pragma once

// The registry's clusters by ClusterId: a name table of its own each. A daemon's are fixed at
// start (its epmd ports); a fleet relay adds one per (source, cluster) it learns of, so the
// table grows while adapters read it. Append-only with a capacity fixed at construction:
// readers take no lock (a slot is written before the count that publishes it), and a name
// never moves, so a reference to it stays valid for the table's life.

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/registry/types.h"

namespace epmdx::registry {

class ClusterTable {
 public:
  /// @param names the first clusters (0 the default), of no source.
  /// @param capacity how many clusters it may ever hold (at least names.size()).
  ClusterTable(std::vector<std::string> names, size_t capacity);

  size_t size() const { return size_.load(std::memory_order_acquire); }
  size_t capacity() const { return capacity_; }
  /// The cluster's name ("default" out of range).
  const std::string& name(ClusterId id) const;
  /// The source the cluster belongs to: "" on a daemon, the source's name on a relay.
  const std::string& source(ClusterId id) const;
  /// A relay: the cluster's source cannot be reached now (its nodes are the last known).
  bool stale(ClusterId id) const;
  void setStale(ClusterId id, bool stale);

  std::optional<ClusterId> find(std::string_view name, std::string_view source = {}) const;
  /// The cluster (name, source), added if new; nullopt when the table is full.
  std::optional<ClusterId> add(std::string_view name, std::string_view source);

 private:
  struct Slot {
    std::string name;
    std::string source;
    std::atomic<bool> stale{false};
  };
  const size_t capacity_;
  std::unique_ptr<Slot[]> slots_;
  std::atomic<size_t> size_{0};
  std::mutex add_mu_;  // One writer at a time; readers never take it.
};

/// Which clusters a read covers: every one, one, or those of a cluster name and/or a source
/// (a relay, where "blue" is a cluster of several sources and new ones appear while a watch
/// runs). Matches are cached per cluster: a filter is used by one thread at a time.
class ClusterFilter {
 public:
  ClusterFilter() = default;
  // Implicit: every read that took one cluster (or none) still reads the same.
  ClusterFilter(std::optional<ClusterId> one) : one_(one) {}  // NOLINT(google-explicit-constructor)
  ClusterFilter(std::nullopt_t) {}                            // NOLINT(google-explicit-constructor)
  ClusterFilter(ClusterId one) : one_(one) {}                 // NOLINT(google-explicit-constructor)
  /// The clusters named `cluster` (any name if unset) of `source` (any source if unset).
  static ClusterFilter select(std::shared_ptr<const ClusterTable> table,
                              std::optional<std::string> cluster,
                              std::optional<std::string> source);

  bool all() const { return !one_ && !table_; }
  /// The one cluster it selects by id, if it was made so.
  std::optional<ClusterId> one() const { return one_; }
  bool matches(ClusterId id) const;

 private:
  std::optional<ClusterId> one_;
  std::shared_ptr<const ClusterTable> table_;
  std::optional<std::string> cluster_;
  std::optional<std::string> source_;
  mutable std::vector<int8_t> cache_;  // -1 unknown, 0 no, 1 yes.
};

}  // namespace epmdx::registry
