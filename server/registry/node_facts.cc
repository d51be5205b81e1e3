// What the probes and holder look-ups learn about a registration: each fact publishes a
// copy of the (immutable) registration, and a change worth a watcher's attention is an
// event.

#include "server/registry/registry.h"

namespace epmdx::registry {

template <class It>
void Registry::replaceLocked(It it, RegistrationPtr copy) {
  auto node = by_name_.extract(it);
  node.key() = Key{copy->cluster, copy->node.name};
  node.mapped().registration = std::move(copy);  // The old one (and its name) may go now.
  by_name_.insert(std::move(node));
}

std::optional<Revision> Registry::recordProbe(ClusterId cluster, std::string_view name,
                                              RegistrationId id, bool alive, std::string error) {
  cluster = checkCluster(cluster);
  std::optional<Revision> changed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_name_.find(Key{cluster, name});
    if (it == by_name_.end() || it->second.registration->id != id) {
      return std::nullopt;  // Gone (or replaced) while the probe ran.
    }
    Entry& entry = it->second;
    // Registrations are immutable: publish a copy with the new health. Probes come every few
    // seconds per node, so this is a few hundred small copies a second at 1,000 nodes.
    auto copy = std::make_shared<Registration>(*entry.registration);
    auto health = std::make_shared<Health>(copy->health());
    Health& h = *health;
    const HealthStatus before = h.status;
    const int64_t now = clock_.nowNanos();
    h.last_probe_ns = now;
    if (alive) {
      h.status = HealthStatus::Alive;
      h.consecutive_failures = 0;
    } else {
      h.status = HealthStatus::Unresponsive;
      ++h.consecutive_failures;
      h.last_error = std::move(error);
    }
    if (h.status != before) {
      h.since_ns = now;
    }
    copy->health_facts = std::move(health);
    const bool changed_status = h.status != before;
    const HealthStatus after = h.status;
    replaceLocked(it, copy);
    if (changed_status) {
      --counters_.nodes_by_health[static_cast<size_t>(before)];
      ++counters_.nodes_by_health[static_cast<size_t>(after)];
      ++counters_.health_changes[static_cast<size_t>(after)];
      changed = appendLocked(EventType::HealthChanged, UnregisterReason::Unspecified,
                             std::move(copy), {}, {});
    }
  }
  if (changed) {
    hub_.notify();
  }
  return changed;
}

std::optional<Revision> Registry::recordHolder(ClusterId cluster, std::string_view name,
                                               RegistrationId id,
                                               std::shared_ptr<const HolderFact> holder) {
  cluster = checkCluster(cluster);
  std::optional<Revision> changed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_name_.find(Key{cluster, name});
    if (it == by_name_.end() || it->second.registration->id != id) {
      return std::nullopt;  // Gone (or replaced) while the lookup ran.
    }
    const auto& old = it->second.registration->holder;
    if (old && holder && old->sameAs(*holder)) {
      return std::nullopt;  // Unchanged: keep the published registration (and its check time).
    }
    // Every look refreshes every registration, so only a new identity is worth an event:
    // a process going from running to sleeping is a fact, not news.
    const bool new_identity = !old || !holder || !old->sameHolder(*holder);
    auto copy = std::make_shared<Registration>(*it->second.registration);
    copy->holder = std::move(holder);
    RegistrationPtr published = copy;
    replaceLocked(it, std::move(copy));
    if (new_identity) {
      ++counters_.holder_changes;
      changed = appendLocked(EventType::HolderChanged, UnregisterReason::Unspecified,
                             std::move(published), {}, {});
    }
  }
  if (changed) {
    hub_.notify();
  }
  return changed;
}

}  // namespace epmdx::registry
