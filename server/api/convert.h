#pragma once

// The registry's values as epmdx.v1 messages: the one mapping both the gRPC and the REST
// adapters use, so the two APIs cannot drift.

#include <memory>
#include <string>
#include <vector>

#include "epmdx/v1/registry.pb.h"
#include "server/registry/registry.h"

namespace epmdx::api {

/// The clusters' names by ClusterId: all a message needs of the registry to name a cluster
/// (and, on a fleet relay, its source and whether that source is stale). It shares the
/// registry's cluster table, which only grows, so copies stay current.
class ClusterNames {
 public:
  ClusterNames() = default;
  /// A table of these clusters (tests, and messages made without a registry).
  explicit ClusterNames(std::vector<std::string> names);
  explicit ClusterNames(std::shared_ptr<const registry::ClusterTable> table)
      : table_(std::move(table)) {}
  /// The registry's clusters.
  static ClusterNames of(const registry::Registry& registry);

  /// The name of `cluster` ("default" for an id out of range, as the registry says).
  const std::string& operator()(registry::ClusterId cluster) const;
  /// The source of `cluster` ("" on a daemon).
  const std::string& source(registry::ClusterId cluster) const;
  bool stale(registry::ClusterId cluster) const { return table_ && table_->stale(cluster); }
  const std::shared_ptr<const registry::ClusterTable>& table() const { return table_; }

 private:
  std::shared_ptr<const registry::ClusterTable> table_;
};

void toProto(const ClusterNames& names, const registry::Registration& r, v1::Node& out);
void toProto(const ClusterNames& names, const registry::Event& e, v1::NodeEvent& out);
void toProto(const ClusterNames& names, const registry::Hold& h, v1::Hold& out);
v1::UnregisterReason toProto(registry::UnregisterReason reason);

/// A registry time (ns since the epoch) as a protobuf Timestamp.
void setTimestamp(int64_t ns, google::protobuf::Timestamp& ts);

}  // namespace epmdx::api
