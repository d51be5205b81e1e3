// Holds: names reserved after an eviction until their time, lifted early or expired.

#include "server/registry/registry.h"

#include <algorithm>

namespace epmdx::registry {

bool Registry::heldLocked(ClusterId cluster, const std::string& name) {
  if (holds_.empty()) {
    return false;
  }
  auto it = holds_.find({cluster, name});
  if (it == holds_.end()) {
    return false;
  }
  if (it->second->expires_at_ns > clock_.nowNanos()) {
    return true;
  }
  // Its time came before the expiry sweep noticed: end it first, so the history reads
  // HOLD_EXPIRED, then REGISTERED.
  endHoldLocked(it, EventType::HoldExpired, {}, {});
  return false;
}

HoldPtr Registry::placeHoldLocked(const RegistrationPtr& registration,
                                  std::chrono::nanoseconds hold_for, std::string actor,
                                  std::string reason) {
  auto hold = std::make_shared<Hold>();
  hold->name = registration->node.name;
  hold->cluster = registration->cluster;
  hold->created_at_ns = clock_.nowNanos();
  hold->expires_at_ns = hold->created_at_ns + hold_for.count();
  hold->actor = std::move(actor);
  hold->reason = std::move(reason);
  hold->registration = registration;
  hold->revision = revision_ + 1;
  // A hold placed over an older one replaces it: one reservation per name.
  holds_[{hold->cluster, hold->name}] = hold;
  ++counters_.holds_placed;
  appendLocked(EventType::Held, UnregisterReason::Unspecified, registration, hold->actor,
               hold->reason, hold);
  return hold;
}

EndedHold Registry::endHoldLocked(std::map<std::pair<ClusterId, std::string>, HoldPtr>::iterator it,
                                  EventType type, std::string actor, std::string detail) {
  EndedHold ended;
  ended.hold = std::move(it->second);
  holds_.erase(it);
  ++(type == EventType::HoldLifted ? counters_.holds_lifted : counters_.holds_expired);
  ended.revision = appendLocked(type, UnregisterReason::Unspecified, ended.hold->registration,
                                std::move(actor), std::move(detail), ended.hold);
  return ended;
}

Result<EndedHold, HoldError> Registry::liftHold(std::string_view name, ClusterId cluster,
                                                std::string actor, std::string detail) {
  cluster = checkCluster(cluster);
  EndedHold ended;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = holds_.find({cluster, std::string(name)});
    if (it == holds_.end()) {
      return makeErr(HoldError::NotFound);
    }
    ended = endHoldLocked(it, EventType::HoldLifted, std::move(actor), std::move(detail));
  }
  hub_.notify();
  return ended;
}

std::vector<EndedHold> Registry::expireHolds() {
  std::vector<EndedHold> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (holds_.empty()) {
      return out;
    }
    const int64_t now = clock_.nowNanos();
    for (auto it = holds_.begin(); it != holds_.end();) {
      auto next = std::next(it);
      if (it->second->expires_at_ns <= now) {
        out.push_back(endHoldLocked(it, EventType::HoldExpired, {}, {}));
      }
      it = next;
    }
  }
  if (!out.empty()) {
    hub_.notify();
  }
  return out;
}

std::optional<int64_t> Registry::nextHoldExpiry() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::optional<int64_t> next;
  for (const auto& [key, hold] : holds_) {
    if (!next || hold->expires_at_ns < *next) {
      next = hold->expires_at_ns;
    }
  }
  return next;
}

Registry::HoldSnapshot Registry::holds(const ClusterFilter& only) const {
  HoldSnapshot s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    s.revision = revision_;
    for (const auto& [key, hold] : holds_) {
      if (only.matches(key.first)) {
        s.holds.push_back(hold);
      }
    }
  }
  std::sort(s.holds.begin(), s.holds.end(), [](const HoldPtr& a, const HoldPtr& b) {
    return a.get()->expires_at_ns < b.get()->expires_at_ns;
  });
  return s;
}

void Registry::onHoldPlaced(std::function<void(int64_t)> placed) {
  std::lock_guard<std::mutex> lock(hold_listener_mu_);
  hold_placed_ = std::move(placed);
}

}  // namespace epmdx::registry
