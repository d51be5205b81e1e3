#pragma once

// The registry's values as epmdx.v1 messages: the one mapping both the gRPC and the REST
// adapters use, so the two APIs cannot drift.

#include "epmdx/v1/registry.pb.h"
#include "server/registry/registry.h"

namespace epmdx::api {

/// `registry` names the registration's cluster.
void toProto(const registry::Registry& registry, const registry::Registration& r, v1::Node& out);
void toProto(const registry::Registry& registry, const registry::Event& e, v1::NodeEvent& out);
void toProto(const registry::Registry& registry, const registry::Hold& h, v1::Hold& out);
v1::UnregisterReason toProto(registry::UnregisterReason reason);

}  // namespace epmdx::api
