#pragma once

// The registry's values as epmdx.v1 messages: the one mapping both the gRPC and the REST
// adapters use, so the two APIs cannot drift.

#include <memory>
#include <string>
#include <vector>

#include "epmdx/v1/registry.pb.h"
#include "server/registry/registry.h"

namespace epmdx::api {

/// The clusters' names by ClusterId: all a message needs of the registry to name a cluster.
/// Fixed when the daemon starts, so a copy is taken once; copies of it share the names.
class ClusterNames {
 public:
  ClusterNames() = default;
  explicit ClusterNames(std::vector<std::string> names);
  /// The names of the registry's clusters.
  static ClusterNames of(const registry::Registry& registry);

  /// The name of `cluster` ("default" for an id out of range, as the registry says).
  const std::string& operator()(registry::ClusterId cluster) const;

 private:
  std::shared_ptr<const std::vector<std::string>> names_;
};

void toProto(const ClusterNames& names, const registry::Registration& r, v1::Node& out);
void toProto(const ClusterNames& names, const registry::Event& e, v1::NodeEvent& out);
void toProto(const ClusterNames& names, const registry::Hold& h, v1::Hold& out);
v1::UnregisterReason toProto(registry::UnregisterReason reason);

/// A registry time (ns since the epoch) as a protobuf Timestamp.
void setTimestamp(int64_t ns, google::protobuf::Timestamp& ts);

}  // namespace epmdx::api
