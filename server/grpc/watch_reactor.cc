#include "server/grpc/watch_reactor.h"

#include <algorithm>

#include "server/api/convert.h"

namespace epmdx::grpcapi {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

WatchReactor::WatchReactor(registry::Registry& registry, WatchSet& set,
                           const v1::WatchNodesRequest& req)
    : registry_(registry),
      set_(set),
      progress_interval_(req.progress_interval_ms() == 0
                             ? milliseconds(5000)
                             : milliseconds(std::max<uint32_t>(req.progress_interval_ms(), 100))) {
  std::lock_guard<std::mutex> lock(mu_);
  last_write_ = steady_clock::now();
  if (req.send_initial_state() && req.has_after_revision()) {
    finishLocked({grpc::StatusCode::INVALID_ARGUMENT,
                  "send_initial_state and after_revision exclude each other"});
    return;
  }
  if (set_.shuttingDown()) {
    finishLocked({grpc::StatusCode::UNAVAILABLE, "epmdx is shutting down"});
    return;
  }
  if (!set_.tryAdd(this)) {
    finishLocked({grpc::StatusCode::RESOURCE_EXHAUSTED,
                  "too many watch streams (--max-watchers); try again later"});
    return;
  }
  auto wake = [this] { this->wake(); };
  if (req.send_initial_state()) {
    auto [snapshot, w] = registry_.listAndWatch(wake);
    watch_ = std::move(w);
    initial_.assign(snapshot.nodes.begin(), snapshot.nodes.end());
    initial_pending_ = true;
    sent_revision_ = snapshot.revision;
  } else {
    const registry::Revision start = req.has_after_revision() ? req.after_revision() + 1 : 0;
    auto w = registry_.watch(start, wake);
    if (!w.ok()) {
      const auto& rej = w.error();
      if (rej.code == registry::WatchRejection::Code::Compacted) {
        finishLocked({grpc::StatusCode::OUT_OF_RANGE,
                      "revision " + std::to_string(req.after_revision()) +
                          " is older than the kept history (oldest " +
                          std::to_string(rej.oldest_retained) + "): list again"});
      } else {
        finishLocked({grpc::StatusCode::INVALID_ARGUMENT,
                      "revision " + std::to_string(req.after_revision()) +
                          " is in the future (current " + std::to_string(rej.current) + ")"});
      }
      return;
    }
    watch_ = std::move(w.value());
    sent_revision_ = watch_->nextRevision() - 1;
  }
  tryWriteLocked();
}

void WatchReactor::wake() {
  std::lock_guard<std::mutex> lock(mu_);
  tryWriteLocked();
}

void WatchReactor::shutdown() {
  std::lock_guard<std::mutex> lock(mu_);
  finishLocked({grpc::StatusCode::UNAVAILABLE, "epmdx is shutting down"});
}

void WatchReactor::tryWriteLocked() {
  if (finished_ || write_pending_ || !watch_) {
    return;
  }
  message_.Clear();
  if (!initial_.empty() || initial_pending_) {
    for (size_t i = 0; i < kMaxNodesPerMessage && !initial_.empty(); ++i) {
      api::toProto(*initial_.front(), *message_.add_initial_nodes());
      initial_.pop_front();
    }
    if (initial_.empty()) {
      message_.set_initial_state_complete(true);
      initial_pending_ = false;
    }
  } else {
    scratch_.clear();
    auto polled = watch_->poll(kMaxEventsPerMessage, scratch_);
    if (!polled.ok()) {
      finishLocked({grpc::StatusCode::OUT_OF_RANGE,
                    "watcher fell behind: changes after revision " +
                        std::to_string(sent_revision_) + " are no longer kept (oldest " +
                        std::to_string(polled.error().oldest_retained) + "): list again"});
      return;
    }
    for (const auto& e : scratch_) {
      api::toProto(e, *message_.add_events());
      sent_revision_ = e.revision;
    }
    if (scratch_.empty()) {
      if (steady_clock::now() - last_write_ < progress_interval_) {
        return;  // Nothing new, and no progress message due yet.
      }
      // Progress: nothing changed up to the current revision.
      sent_revision_ = std::max(sent_revision_, watch_->nextRevision() - 1);
    }
  }
  message_.set_revision(sent_revision_);
  write_pending_ = true;
  last_write_ = steady_clock::now();
  StartWrite(&message_);
}

void WatchReactor::OnWriteDone(bool ok) {
  std::lock_guard<std::mutex> lock(mu_);
  write_pending_ = false;
  if (!ok) {
    finishLocked({grpc::StatusCode::UNAVAILABLE, "write failed"});
    return;
  }
  tryWriteLocked();
}

void WatchReactor::OnCancel() {
  std::lock_guard<std::mutex> lock(mu_);
  finishLocked(grpc::Status::CANCELLED);
}

void WatchReactor::finishLocked(grpc::Status status) {
  if (finished_) {
    return;
  }
  finished_ = true;
  Finish(std::move(status));
}

void WatchReactor::OnDone() {
  // Unsubscribe first and without mu_: when reset() returns no wake-up runs or will run.
  watch_.reset();
  set_.remove(this);
  delete this;
}

WatchSet::WatchSet(size_t max_watchers) : max_(max_watchers) {
  ticker_ = std::thread([this] { tickLoop(); });
}

WatchSet::~WatchSet() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ticker_ = true;
  }
  cv_.notify_all();
  ticker_.join();
}

bool WatchSet::tryAdd(WatchReactor* r) {
  std::lock_guard<std::mutex> lock(mu_);
  if (live_.size() >= max_ || shutting_down_) {
    return false;
  }
  live_.push_back(r);
  return true;
}

void WatchSet::remove(WatchReactor* r) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = std::find(live_.begin(), live_.end(), r);
  if (it != live_.end()) {
    live_.erase(it);
  }
  cv_.notify_all();
}

void WatchSet::shutdownAll() {
  std::lock_guard<std::mutex> lock(mu_);
  shutting_down_ = true;
  for (auto* r : live_) {
    r->shutdown();
  }
}

bool WatchSet::shuttingDown() const {
  std::lock_guard<std::mutex> lock(mu_);
  return shutting_down_;
}

size_t WatchSet::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return live_.size();
}

void WatchSet::waitEmpty(milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [this] { return live_.empty(); });
}

void WatchSet::tickLoop() {
  // Progress messages: every 100 ms each stream checks whether one is due.
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_ticker_) {
    cv_.wait_for(lock, milliseconds(100), [this] { return stop_ticker_; });
    for (auto* r : live_) {
      r->wake();
    }
  }
}

}  // namespace epmdx::grpcapi
