#include "server/api/hold_expiry.h"

#include <algorithm>
#include <chrono>

#include "server/common/log.h"

namespace epmdx::api {

HoldExpiry::HoldExpiry(registry::Registry& registry, std::chrono::nanoseconds max_sleep)
    : registry_(registry), max_sleep_(max_sleep) {
  registry_.onHoldPlaced([this](int64_t /*expires_at_ns*/) { poke(); });
}

HoldExpiry::~HoldExpiry() {
  registry_.onHoldPlaced({});  // Returns once no poke() is running: none comes after.
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

std::optional<int64_t> HoldExpiry::armedFor() const {
  std::lock_guard<std::mutex> lock(mu_);
  return armed_for_;
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
    // The registry's clock is wall time; look again at least every max_sleep_ in case it jumps.
    const auto wait =
        std::clamp(nanoseconds(*next - registry_.nowNanos()), nanoseconds(milliseconds(1)),
                   std::max(max_sleep_, nanoseconds(milliseconds(1))));
    armed_for_ = next;
    cv_.wait_for(lock, wait, [this] { return poked_ || stop_; });
    armed_for_.reset();
  }
}

}  // namespace epmdx::api
