#pragma once

// Ends holds when their time comes, on a thread of its own (started by the first hold), so that
// HOLD_EXPIRED is an event at the expiry (not at the next ALIVE2 for the name) and a list of
// holds is never stale. It sleeps until the soonest expiry; a new hold wakes it (poke()).

#include <condition_variable>
#include <mutex>
#include <thread>

#include "server/registry/registry.h"

namespace epmdx::api {

class HoldExpiry {
 public:
  explicit HoldExpiry(registry::Registry& registry);
  ~HoldExpiry();
  HoldExpiry(const HoldExpiry&) = delete;
  HoldExpiry& operator=(const HoldExpiry&) = delete;

  /// A hold was placed: look again at the soonest expiry.
  void poke();

 private:
  void run();

  registry::Registry& registry_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool poked_ = false;  // Guarded by mu_.
  bool stop_ = false;   // Guarded by mu_.
  std::thread thread_;
};

}  // namespace epmdx::api
