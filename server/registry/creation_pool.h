#pragma once

// OTP's "unreg" list (erts/epmd/src/epmd_srv.c: node_reg2, node_unreg): names that were
// registered once, remembered with their creation counter so that a node that comes back
// gets a different creation, which lets peers tell the new incarnation from the old one.

#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace epmdx::registry {

class CreationPool {
 public:
  /// @param max_records OTP's MAX_UNREG_COUNT (1000; 5 with -d). Past it, a new name takes
  ///        over the oldest remembered record (and its counter) instead of a fresh one.
  explicit CreationPool(size_t max_records) : max_records_(max_records) {}

  /// The creation counter for a name that is about to register, exactly as OTP picks it:
  /// a remembered name gets its old counter bumped; a new name takes the oldest record
  /// unchanged when more than max_records are remembered; else a fresh `now`, bumped.
  uint32_t take(std::string_view name, uint32_t now_seconds);

  /// Remembers a name that was unregistered (appended, FIFO).
  void put(std::string name, uint32_t counter, uint16_t port, int64_t connection_handle);

  struct Record {
    std::string name;
    uint32_t counter;
    uint16_t port;
    int64_t connection_handle;
  };
  /// Oldest first, for DUMP_REQ's "old/unused name" lines.
  std::vector<Record> records() const { return {fifo_.begin(), fifo_.end()}; }
  size_t size() const { return fifo_.size(); }

  /// OTP's bump_creation: creations 0..3 are never handed to a v6 node.
  static uint32_t bump(uint32_t counter) {
    ++counter;
    return counter < 4 ? 4 : counter;
  }

 private:
  void erase(std::list<Record>::iterator it);

  size_t max_records_;
  std::list<Record> fifo_;
  std::unordered_map<std::string_view, std::list<Record>::iterator> index_;  // Keys view fifo_.
};

}  // namespace epmdx::registry
