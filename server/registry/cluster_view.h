#pragma once

// One cluster of the registry, as an epmd port sees it: every call is scoped to the
// cluster, so the epmd layer cannot reach another cluster's names by mistake (NAMES, DUMP,
// PORT_PLEASE2, STOP and KILL are per cluster, exactly as with one OTP epmd per port).

#include "server/registry/registry.h"

namespace epmdx::registry {

class ClusterView {
 public:
  ClusterView(Registry& registry, ClusterId cluster) : registry_(registry), cluster_(cluster) {}

  Result<RegistrationPtr, RegisterError> add(NodeInfo node, Origin origin,
                                             std::weak_ptr<RegistrationOwner> owner = {}) {
    return registry_.add(std::move(node), std::move(origin), std::move(owner), cluster_);
  }
  bool remove(const Registration& registration, UnregisterReason reason) {
    return registry_.remove(registration, reason);
  }
  Result<Evicted, EvictError> evict(std::string_view name,
                                    std::optional<RegistrationId> expected_id,
                                    UnregisterReason reason, std::string actor = {},
                                    std::string detail = {}) {
    return registry_.evict({.name = name,
                            .cluster = cluster_,
                            .expected_id = expected_id,
                            .reason = reason,
                            .actor = std::move(actor),
                            .detail = std::move(detail)});
  }
  size_t removeAll(UnregisterReason reason) { return registry_.removeAll(reason, cluster_); }
  RegistrationPtr find(std::string_view name) const { return registry_.find(name, cluster_); }
  Registry::Snapshot list() const { return registry_.list(cluster_); }
  std::vector<CreationPool::Record> unusedNames() const { return registry_.unusedNames(cluster_); }
  size_t size() const { return registry_.size(cluster_); }
  ClusterId cluster() const { return cluster_; }

 private:
  Registry& registry_;
  ClusterId cluster_;
};

}  // namespace epmdx::registry
