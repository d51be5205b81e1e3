#include "server/api/health_monitor.h"

#include <vector>

#include "server/common/log.h"

namespace epmdx::api {

HealthMonitor::HealthMonitor(registry::Registry& registry, HealthOptions options)
    : registry_(registry), options_(options) {
  prober_ = std::make_unique<probe::Prober>(
      probe::ProberOptions{.interval = options.interval, .timeout = options.timeout},
      [this](uint64_t id, const probe::ProbeResult& r) { onResult(id, r); });
  relist();
  drain();  // Probes the nodes there are before the constructor returns.
  thread_ = std::thread([this] { run(); });
}

HealthMonitor::~HealthMonitor() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    cv_.notify_one();
  }
  thread_.join();
  prober_.reset();  // No callback runs after this.
  cursor_.close();
}

probe::ProbeTarget HealthMonitor::targetOf(const registry::Registration& r) {
  const auto& peer = r.origin.peer_address;
  std::string address = peer.substr(0, peer.rfind(':'));
  if (address.size() >= 2 && address.front() == '[') {
    address = address.substr(1, address.size() - 2);
  }
  return {address, r.node.port, false};
}

void HealthMonitor::follow(const registry::Registration& r) {
  {
    std::lock_guard<std::mutex> lock(targets_mu_);
    targets_[r.id] = Target{r.cluster, r.node.name};
  }
  prober_->watch(r.id, targetOf(r));
}

void HealthMonitor::run() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return pending_ || stop_; });
      if (stop_) {
        return;
      }
      pending_ = false;
    }
    drain();
  }
}

void HealthMonitor::relist() {
  auto [snapshot, watch] = registry_.listAndWatch([this] {
    std::lock_guard<std::mutex> lock(mu_);
    pending_ = true;
    cv_.notify_one();
  });
  cursor_.restart(std::move(watch), snapshot.revision);
  cursor_.startWithInitial(std::move(snapshot.nodes));
  std::vector<registry::RegistrationId> stale;
  {
    std::lock_guard<std::mutex> lock(targets_mu_);
    for (const auto& [id, t] : targets_) {
      stale.push_back(id);
    }
    targets_.clear();
  }
  for (auto id : stale) {
    prober_->unwatch(id);
  }
}

void HealthMonitor::drain() {
  for (;;) {
    const WatchStep step = cursor_.next();
    switch (step.kind) {
      case WatchStep::Kind::Initial:
        for (const auto& n : step.nodes) {
          follow(*n);
        }
        break;
      case WatchStep::Kind::Events:
        for (const auto& e : step.events) {
          onEvent(e);
        }
        break;
      case WatchStep::Kind::FellBehind:
        log::warn("health monitor fell behind the history; re-listing");
        relist();
        break;
      case WatchStep::Kind::Coverage:  // Relays have no health monitor.
        break;
      case WatchStep::Kind::Nothing:
      case WatchStep::Kind::Progress:
        return;  // Read everything there is (no filter: never a step with `more`).
    }
  }
}

void HealthMonitor::onEvent(const registry::Event& e) {
  if (e.type == registry::EventType::Registered) {
    follow(*e.registration);
  } else if (e.type == registry::EventType::Unregistered) {
    if (e.reason == registry::UnregisterReason::TakenOver) {
      // The registry decides takeovers on the epmd thread and logs nothing; say it here.
      log::warn("name taken over from an unresponsive node",
                {{"cluster", registry_.clusterName(e.registration->cluster)},
                 {"name", log::printable(e.registration->node.name)},
                 {"id", e.registration->id},
                 {"by", std::string(e.actor())},
                 {"reason", std::string(e.detail())}});
    }
    {
      std::lock_guard<std::mutex> lock(targets_mu_);
      targets_.erase(e.registration->id);
    }
    prober_->unwatch(e.registration->id);
  }
}

void HealthMonitor::onResult(uint64_t id, const probe::ProbeResult& result) {
  Target target;
  {
    std::lock_guard<std::mutex> lock(targets_mu_);
    auto it = targets_.find(id);
    if (it == targets_.end()) {
      return;
    }
    target = it->second;
  }
  const bool alive = result.liveness == probe::Liveness::Alive;
  const auto changed =
      registry_.recordProbe(target.cluster, target.name, id, alive, alive ? "" : result.detail);
  if (changed && alive) {
    log::info("node alive", {{"cluster", registry_.clusterName(target.cluster)},
                             {"name", log::printable(target.name)},
                             {"id", id},
                             {"revision", *changed}});
  } else if (changed) {
    log::warn("node unresponsive", {{"cluster", registry_.clusterName(target.cluster)},
                                    {"name", log::printable(target.name)},
                                    {"id", id},
                                    {"revision", *changed},
                                    {"error", result.detail}});
  }
  if (!alive && options_.evict_after.count() > 0) {
    maybeEvict(target, id);
  }
}

void HealthMonitor::maybeEvict(const Target& target, registry::RegistrationId id) {
  const auto r = registry_.find(target.name, target.cluster);
  if (!r || r->id != id || r->health().status != registry::HealthStatus::Unresponsive) {
    return;
  }
  const int64_t for_ns = registry_.nowNanos() - r->health().since_ns;
  if (for_ns < std::chrono::nanoseconds(options_.evict_after).count()) {
    return;
  }
  const std::string detail =
      "unresponsive for " + std::to_string(for_ns / 1000000) +
      " ms (--evict-unresponsive-after=" + std::to_string(options_.evict_after.count() / 1000) +
      "s): " + r->health().last_error;
  // With the registration id: a node that re-registered meanwhile is never evicted.
  auto evicted = registry_.evict({.name = target.name,
                                  .cluster = target.cluster,
                                  .expected_id = id,
                                  .reason = registry::UnregisterReason::AutoEvicted,
                                  .actor = "auto-evict",
                                  .detail = detail});
  if (evicted.ok()) {
    log::warn("evicted an unresponsive node", {{"cluster", registry_.clusterName(target.cluster)},
                                               {"name", log::printable(target.name)},
                                               {"id", id},
                                               {"by", "auto-evict"},
                                               {"reason", detail}});
  }
}

}  // namespace epmdx::api
