#pragma once

// What the API needs of a fleet relay beyond its registry: its sources, how far an answer
// covers them, and the way to a source for a write. A daemon has none (Service::fleet() is
// null): its reads cover itself, and its writes are its own.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "epmdx/v1/registry.pb.h"
#include "server/api/status.h"
#include "server/common/result.h"
#include "server/registry/types.h"

namespace epmdx::api {

class FleetView {
 public:
  virtual ~FleetView() = default;

  virtual v1::ListSourcesResponse listSources() const = 0;
  /// Which sources a read of `source` ("": every source) covers, and which it cannot reach.
  virtual v1::Coverage coverage(std::string_view source) const = 0;
  /// Grows by one each time a source's state changes: a watch sends coverage again then.
  virtual uint64_t coverageVersion() const = 0;
  virtual bool knowsSource(std::string_view source) const = 0;
  /// The relay's cluster `cluster` as its source last described it (ListClusters: port,
  /// addresses, who may list and resolve), `serving` only while the source is LIVE; nullopt
  /// for a cluster no source described.
  virtual std::optional<v1::Cluster> sourceCluster(registry::ClusterId cluster) const = 0;

  /// Forwards an eviction of `node` (the relay's copy of a source's registration) to its
  /// source, with the source's boot epoch and the registration id as preconditions.
  /// UNAVAILABLE when the source cannot be reached: an eviction through a relay fails closed.
  virtual Result<v1::EvictNodeResponse, Error> evict(const registry::Registration& node,
                                                     v1::EvictNodeRequest request) = 0;
  /// Forwards a LiftHold to `source`.
  virtual Result<v1::LiftHoldResponse, Error> liftHold(std::string_view source,
                                                       v1::LiftHoldRequest request) = 0;
};

}  // namespace epmdx::api
