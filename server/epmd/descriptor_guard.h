#pragma once

// What the epmd listener needs to keep answering near the process's descriptor limit
// (RLIMIT_NOFILE): a high-water mark, and one reserve descriptor.
//
// The listener estimates the descriptors in use from its own count of connections plus
// what was open before it started, and from the numbers the kernel hands out (always the
// lowest free one, so descriptor N means N are in use below it). The reserve is a descriptor held
// open for the one moment the table is full and nothing can be shed: closing it lets one accept()
// succeed, so the waiting connection is taken off the backlog (and closed) instead of making the
// listening socket readable forever, which would spin the loop or stall it.
//
// Threading: the epmd io_context's thread only.

#include <cstddef>

namespace epmdx::epmd {

class DescriptorGuard {
 public:
  /// @param limit the descriptor limit to plan for; 0 reads RLIMIT_NOFILE's soft limit.
  explicit DescriptorGuard(size_t limit = 0);
  ~DescriptorGuard();
  DescriptorGuard(const DescriptorGuard&) = delete;
  DescriptorGuard& operator=(const DescriptorGuard&) = delete;

  /// How many descriptors to free to get back under the high-water mark, with `in_use`
  /// of them in use. 0 below the mark.
  size_t excess(size_t in_use) const {
    return in_use >= high_water_ ? in_use - high_water_ + 1 : 0;
  }
  /// The lowest free descriptor number (two system calls), or the limit when none is free.
  int lowestFree();

  /// Closes the reserve so that one descriptor is free. @return false if none was held.
  bool releaseReserve();
  /// Takes the reserve (again). @return false while the table is still full.
  bool takeReserve();

  size_t limit() const { return limit_; }
  size_t highWater() const { return high_water_; }

 private:
  size_t limit_;
  size_t high_water_;
  int reserve_ = -1;
};

}  // namespace epmdx::epmd
