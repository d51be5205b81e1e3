#include "server/registry/history.h"

#include <algorithm>
#include <cassert>

namespace epmdx::registry {

void History::append(Event&& event) {
  assert(events_.empty() || event.revision == events_.back().revision + 1);
  if (events_.size() == capacity_) {
    events_.pop_front();
  }
  events_.push_back(std::move(event));
}

History::Read History::readFrom(Revision from, size_t max, std::vector<Event>& out) const {
  if (events_.empty()) {
    return Read::Ok;  // Caller guarantees from == current + 1 or is compacted-checked.
  }
  const Revision oldest = events_.front().revision;
  if (from < oldest) {
    return Read::Compacted;
  }
  size_t index = static_cast<size_t>(from - oldest);
  for (; index < events_.size() && max > 0; ++index, --max) {
    out.push_back(events_[index]);
  }
  return Read::Ok;
}

void History::readLast(size_t max, const ClusterFilter& only, std::vector<Event>& out) const {
  const size_t first = out.size();
  for (auto it = events_.rbegin(); it != events_.rend() && out.size() - first < max; ++it) {
    if (only.matches(it->registration->cluster)) {
      out.push_back(*it);
    }
  }
  std::reverse(out.begin() + static_cast<std::ptrdiff_t>(first), out.end());
}

void History::readAfter(size_t max, Revision after, const ClusterFilter& only,
                        std::vector<Event>& out) const {
  if (events_.empty() || after >= events_.back().revision) {
    return;
  }
  const Revision oldest = events_.front().revision;
  // Revisions are consecutive, so the first one above `after` is found by index.
  size_t index = after < oldest ? 0 : static_cast<size_t>(after + 1 - oldest);
  for (size_t taken = 0; index < events_.size() && taken < max; ++index) {
    if (only.matches(events_[index].registration->cluster)) {
      out.push_back(events_[index]);
      ++taken;
    }
  }
}

}  // namespace epmdx::registry
