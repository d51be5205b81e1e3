#include "server/registry/history.h"

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

}  // namespace epmdx::registry
