// A fleet relay's writes: its registry is written by its sources' streams instead of an epmd
// port. Each source change becomes the same kind of change here, with the relay's revision,
// so the relay's history, watches and adapters are the daemon's own.

#include <cassert>

#include "server/registry/registry.h"

namespace epmdx::registry {

std::optional<Revision> Registry::relay(const Event& e) {
  assert(e.registration && e.registration->relayed);
  std::optional<Revision> applied;
  {
    std::lock_guard<std::mutex> lock(mu_);
    applied = relayLocked(e);
  }
  if (applied) {
    hub_.notify();
  }
  return applied;
}

void Registry::insertRelayedLocked(const Event& e) {
  auto reg = std::make_shared<Registration>(*e.registration);
  reg->cluster = checkCluster(reg->cluster);
  reg->revision = revision_ + 1;  // The relay's revision of its REGISTERED event.
  Entry& entry = by_name_[Key{reg->cluster, reg->node.name}];
  entry.registration = reg;
  entry.older = newest_;
  (newest_ != nullptr ? newest_->newer : oldest_) = &entry;
  newest_ = &entry;
  ++counters_.registrations;
  ++counters_.registrations_by_cluster[reg->cluster];
  ++counters_.nodes_by_cluster[reg->cluster];
  ++counters_.nodes_by_health[static_cast<size_t>(reg->health().status)];
  appendLocked(EventType::Registered, UnregisterReason::Unspecified, reg, std::string(e.actor()),
               std::string(e.detail()));
}

std::optional<Revision> Registry::relayLocked(const Event& e) {
  const Registration& r = *e.registration;
  const ClusterId cluster = checkCluster(r.cluster);
  auto it = by_name_.find(Key{cluster, r.node.name});
  const bool same = it != by_name_.end() && it->second.registration->id == r.id;
  switch (e.type) {
    case EventType::Registered:
      if (it != by_name_.end()) {
        // A registration the relay missed the end of (it cannot, in order): end it first.
        eraseLocked(cluster, r.node.name, UnregisterReason::SourceResynced, {}, {});
      }
      insertRelayedLocked(e);
      return revision_;
    case EventType::Unregistered:
      if (!same) {
        return std::nullopt;
      }
      eraseLocked(cluster, r.node.name, e.reason, std::string(e.actor()), std::string(e.detail()));
      return revision_;
    case EventType::HealthChanged:
    case EventType::HolderChanged: {
      if (!same) {
        return std::nullopt;
      }
      auto copy = std::make_shared<Registration>(r);
      copy->cluster = cluster;
      copy->revision = it->second.registration->revision;  // Still the REGISTERED one.
      const HealthStatus before = it->second.registration->health().status;
      const HealthStatus after = copy->health().status;
      if (before != after) {
        --counters_.nodes_by_health[static_cast<size_t>(before)];
        ++counters_.nodes_by_health[static_cast<size_t>(after)];
        ++counters_.health_changes[static_cast<size_t>(after)];
      }
      if (e.type == EventType::HolderChanged) {
        ++counters_.holder_changes;
      }
      replaceLocked(it, copy);
      return appendLocked(e.type, UnregisterReason::Unspecified, std::move(copy), {}, {});
    }
    case EventType::Held: {
      auto hold = std::make_shared<Hold>(*e.hold);
      hold->cluster = cluster;
      hold->revision = revision_ + 1;
      holds_[{cluster, hold->name}] = hold;
      ++counters_.holds_placed;
      return appendLocked(EventType::Held, UnregisterReason::Unspecified, e.registration,
                          std::string(e.actor()), std::string(e.detail()), hold);
    }
    case EventType::HoldLifted:
    case EventType::HoldExpired: {
      auto held = holds_.find({cluster, e.hold ? e.hold->name : r.node.name});
      if (held == holds_.end()) {
        return std::nullopt;
      }
      return endHoldLocked(held, e.type, std::string(e.actor()), std::string(e.detail())).revision;
    }
  }
  return std::nullopt;
}

}  // namespace epmdx::registry
