#include "server/api/hold_expiry.h"

#include <algorithm>
#include <chrono>

#include "server/common/log.h"

namespace epmdx::api {

HoldExpiry::HoldExpiry(registry::Registry& registry) : registry_(registry) {}

HoldExpiry::~HoldExpiry() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    cv_.notify_one();
  }
  if (thread_.joinable()) {
    thread_.join();
  }
}

void HoldExpiry::poke() {
  std::lock_guard<std::mutex> lock(mu_);
  poked_ = true;
  if (!thread_.joinable() && !stop_) {
    // Started with the first hold: a daemon that never holds a name pays no thread for it.
    thread_ = std::thread([this] { run(); });
  }
  cv_.notify_one();
}

void HoldExpiry::run() {
  using namespace std::chrono;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    lock.unlock();
    for (const auto& ended : registry_.expireHolds()) {
      log::info("hold expired", {{"cluster", registry_.clusterName(ended.hold->cluster)},
                                 {"name", log::printable(ended.hold->name)},
                                 {"revision", ended.revision}});
    }
    const auto next = registry_.nextHoldExpiry();
    lock.lock();
    if (stop_) {
      break;
    }
    if (poked_) {
      poked_ = false;
      continue;
    }
    if (!next) {
      cv_.wait(lock, [this] { return poked_ || stop_; });
      continue;
    }
    // The registry's clock is wall time; re-check at least every second in case it jumps.
    const auto wait = std::clamp(nanoseconds(*next - registry_.nowNanos()),
                                 nanoseconds(milliseconds(1)), nanoseconds(seconds(1)));
    cv_.wait_for(lock, wait, [this] { return poked_ || stop_; });
  }
}

}  // namespace epmdx::api
