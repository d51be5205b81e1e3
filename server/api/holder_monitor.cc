#include "server/api/holder_monitor.h"

#include "server/api/node_host.h"

namespace epmdx::api {

registry::HolderFact toFact(const holder::Holder& h, int64_t now_ns) {
  using S = registry::HolderFact::Status;
  registry::HolderFact f;
  switch (h.status) {
    case holder::HolderStatus::Found:
      f.status = S::Found;
      break;
    case holder::HolderStatus::NotOnHost:
      f.status = S::NotOnHost;
      break;
    case holder::HolderStatus::NotVisible:
      f.status = S::NotVisible;
      break;
    case holder::HolderStatus::PermissionDenied:
      f.status = S::PermissionDenied;
      break;
    case holder::HolderStatus::Error:
      f.status = S::Error;
      break;
  }
  f.reason = h.reason;
  for (const auto& p : h.processes) {
    f.processes.push_back({static_cast<int32_t>(p.pid), static_cast<uint32_t>(p.uid),
                           p.user.empty() ? holder::userName(p.uid) : p.user, p.command,
                           p.command_line, p.stateName()});
  }
  f.checked_ns = now_ns;
  return f;
}

HolderMonitor::HolderMonitor(registry::Registry& registry, std::chrono::milliseconds interval)
    : registry_(registry) {
  service_.every(
      interval, [this] { return connections(); },
      [this](std::vector<holder::Holder> holders, const holder::ResolveStats& stats) {
        record(std::move(holders), stats);
      });
}

holder::ResolveStats HolderMonitor::lastStats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_;
}

uint64_t HolderMonitor::batches() const {
  std::lock_guard<std::mutex> lock(mu_);
  return batches_;
}

std::vector<holder::ConnectionKey> HolderMonitor::connections() {
  std::vector<holder::ConnectionKey> keys;
  std::vector<Pending> pending;
  for (const auto& r : registry_.list().nodes) {
    auto local = holder::Endpoint::parse(r->origin.local_address);
    auto remote = holder::Endpoint::parse(r->origin.peer_address);
    if (!local || !remote) {
      continue;  // Registered without a socket (in-process tests).
    }
    keys.push_back({*local, *remote});
    pending.push_back({r->cluster, r->node.name, r->id});
  }
  std::lock_guard<std::mutex> lock(mu_);
  pending_ = std::move(pending);
  return keys;
}

void HolderMonitor::record(std::vector<holder::Holder> holders, const holder::ResolveStats& stats) {
  std::vector<Pending> pending;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending.swap(pending_);
    last_ = stats;
  }
  const int64_t now = registry_.nowNanos();
  for (size_t i = 0; i < holders.size() && i < pending.size(); ++i) {
    auto fact = toFact(holders[i], now);
    for (const auto& p : fact.processes) {
      fact.node_host = hostFromCommandLine(p.command_line, pending[i].name, daemonHostNames());
      if (!fact.node_host.empty()) {
        break;  // After a fork, parent and child have the same command line.
      }
    }
    registry_.recordHolder(pending[i].cluster, pending[i].name, pending[i].id,
                           std::make_shared<const registry::HolderFact>(std::move(fact)));
  }
  std::lock_guard<std::mutex> lock(mu_);
  ++batches_;  // After the records: a reader that sees the count sees their events.
}

}  // namespace epmdx::api
