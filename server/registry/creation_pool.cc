#include "server/registry/creation_pool.h"

namespace epmdx::registry {

uint32_t CreationPool::take(std::string_view name, uint32_t now_seconds) {
  if (auto it = index_.find(name); it != index_.end()) {
    const uint32_t counter = bump(it->second->counter);
    erase(it->second);
    return counter;
  }
  if (fifo_.size() > max_records_) {
    // OTP recycles the oldest record as is: its counter is not reset or bumped.
    const uint32_t counter = fifo_.front().counter;
    erase(fifo_.begin());
    return counter;
  }
  return bump(now_seconds);
}

void CreationPool::put(std::string name, uint32_t counter, uint16_t port,
                       int64_t connection_handle) {
  fifo_.push_back(Record{std::move(name), counter, port, connection_handle});
  auto it = std::prev(fifo_.end());
  // A name is in the pool at most once: it can only be unregistered while registered, and
  // registering takes it out of the pool.
  index_[it->name] = it;
}

void CreationPool::erase(std::list<Record>::iterator it) {
  index_.erase(it->name);
  fifo_.erase(it);
}

}  // namespace epmdx::registry
