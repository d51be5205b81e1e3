#include "server/registry/watch_hub.h"

#include <algorithm>

namespace epmdx::registry {

WatchHub::WatchHub(bool async) : async_(async) {
  if (async_) {
    thread_ = std::thread([this] { run(); });
  }
}

WatchHub::~WatchHub() {
  {
    std::lock_guard<std::mutex> lock(signal_mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) {
    thread_.join();
  }
}

uint64_t WatchHub::add(WakeFn wake) {
  auto entry = std::make_shared<Entry>();
  entry->wake = std::move(wake);
  std::lock_guard<std::mutex> lock(watchers_mu_);
  const uint64_t token = next_token_++;
  watchers_.emplace_back(token, std::move(entry));
  count_.store(watchers_.size(), std::memory_order_relaxed);
  return token;
}

void WatchHub::remove(uint64_t token) {
  std::shared_ptr<Entry> entry;
  {
    std::lock_guard<std::mutex> lock(watchers_mu_);
    auto it = std::find_if(watchers_.begin(), watchers_.end(),
                           [token](const auto& w) { return w.first == token; });
    if (it != watchers_.end()) {
      entry = std::move(it->second);
      std::swap(*it, watchers_.back());  // Order does not matter: O(1) removal.
      watchers_.pop_back();
    }
    count_.store(watchers_.size(), std::memory_order_relaxed);
  }
  if (entry) {
    // Waits for this entry's wake if it is running right now, and no longer.
    std::lock_guard<std::mutex> lock(entry->mu);
    entry->removed = true;
  }
}

void WatchHub::notify() {
  if (count_.load(std::memory_order_relaxed) == 0) {
    return;  // A watcher that subscribes later reads the history from its own cursor.
  }
  if (!async_) {
    fanOut();
    return;
  }
  {
    std::lock_guard<std::mutex> lock(signal_mu_);
    pending_ = true;
  }
  cv_.notify_one();
}

void WatchHub::run() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(signal_mu_);
      cv_.wait(lock, [this] { return pending_ || stopping_; });
      if (stopping_) {
        return;
      }
      // Changes that arrive during the fan-out set pending_ again and are coalesced into
      // one more round: a watcher reads everything since its cursor, not one event a wake.
      pending_ = false;
    }
    fanOut();
  }
}

void WatchHub::fanOut() {
  std::vector<std::shared_ptr<Entry>> all;
  {
    std::lock_guard<std::mutex> lock(watchers_mu_);
    all.reserve(watchers_.size());
    for (const auto& w : watchers_) {
      all.push_back(w.second);
    }
  }
  for (const auto& entry : all) {
    std::lock_guard<std::mutex> lock(entry->mu);
    if (!entry->removed) {
      entry->wake();
    }
  }
}

}  // namespace epmdx::registry
