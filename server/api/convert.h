#pragma once

// The registry's values as epmdx.v1 messages: the one mapping both the gRPC and the REST
// adapters use, so the two APIs cannot drift.

#include "epmdx/v1/registry.pb.h"
#include "server/registry/types.h"

namespace epmdx::api {

void toProto(const registry::Registration& r, v1::Node& out);
void toProto(const registry::Event& e, v1::NodeEvent& out);
v1::UnregisterReason toProto(registry::UnregisterReason reason);

}  // namespace epmdx::api
