#pragma once

// A source's messages in the relay's registry terms: a v1::Node becomes a Registration in
// the relay's cluster for that (source, cluster), with the facts only the source knows kept
// in Registration::relayed. The inverse of api::toProto, field for field.

#include "epmdx/v1/registry.pb.h"
#include "server/registry/types.h"

namespace epmdx::fleet {

registry::RegistrationPtr fromProto(const v1::Node& node, registry::ClusterId cluster);
/// The event with its registration (and hold) in `cluster`.
registry::Event fromProto(const v1::NodeEvent& event, registry::ClusterId cluster);
registry::UnregisterReason fromProto(v1::UnregisterReason reason);

}  // namespace epmdx::fleet
