#pragma once

// The bounded, ordered log of recent events. Sliding the window forward is compaction:
// a reader whose position fell out of the window must list again (Kubernetes' 410 Gone).

#include <cstddef>
#include <deque>
#include <optional>
#include <vector>

#include "server/registry/cluster_table.h"
#include "server/registry/types.h"

namespace epmdx::registry {

class History {
 public:
  explicit History(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

  /// Appends the event with the next revision (the caller assigns it, strictly +1).
  void append(Event&& event);

  /// The oldest revision still readable. With nothing retained, current + 1.
  Revision oldestRetained(Revision current) const {
    return events_.empty() ? current + 1 : events_.front().revision;
  }

  enum class Read { Ok, Compacted };
  /// Copies up to `max` events with revision >= `from` into `out`.
  /// @pre from <= current + 1 (the caller checks future revisions).
  Read readFrom(Revision from, size_t max, std::vector<Event>& out) const;

  /// Copies the newest `max` events (of cluster `only`, if set) into `out`, oldest first.
  /// Walks back from the newest, so it stops after `max` matches.
  void readLast(size_t max, const ClusterFilter& only, std::vector<Event>& out) const;

  /// Copies the first `max` kept events with revision > `after` (of cluster `only`, if set)
  /// into `out`, oldest first: a page that the next call continues from its last revision.
  /// Whether events after `after` were compacted away is the caller's to check.
  void readAfter(size_t max, Revision after, const ClusterFilter& only,
                 std::vector<Event>& out) const;

  size_t size() const { return events_.size(); }
  size_t capacity() const { return capacity_; }

 private:
  size_t capacity_;
  std::deque<Event> events_;
};

}  // namespace epmdx::registry
