#pragma once

// Ends holds when their time comes, on a thread of its own (started by the first hold), so that
// HOLD_EXPIRED is an event at the expiry (not at the next ALIVE2 for the name) and a list of
// holds is never stale. It sleeps until the soonest expiry; the registry tells it of every new
// hold (Registry::onHoldPlaced), whoever placed it, and it looks again.

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "server/registry/registry.h"

namespace epmdx::api {

class HoldExpiry {
 public:
  /// @param max_sleep the longest it sleeps without looking again, in case the registry's
  ///        clock (wall time) jumps.
  explicit HoldExpiry(registry::Registry& registry,
                      std::chrono::nanoseconds max_sleep = std::chrono::seconds(1));
  ~HoldExpiry();
  HoldExpiry(const HoldExpiry&) = delete;
  HoldExpiry& operator=(const HoldExpiry&) = delete;

  /// The expiry (registry clock, ns) the timer sleeps toward now, if it sleeps toward one:
  /// what it will end next unless a new hold wakes it first.
  std::optional<int64_t> armedFor() const;

 private:
  /// A hold was placed: look again at the soonest expiry.
  void poke();
  void run();

  registry::Registry& registry_;
  const std::chrono::nanoseconds max_sleep_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool poked_ = false;                // Guarded by mu_.
  bool stop_ = false;                 // Guarded by mu_.
  std::optional<int64_t> armed_for_;  // Guarded by mu_.
  std::thread thread_;
};

}  // namespace epmdx::api
