#pragma once

// epmdx.v1.Fleet over gRPC: a fleet relay's sources. Registered by a relay only, so a daemon
// answers UNIMPLEMENTED.

#include <grpcpp/grpcpp.h>

#include "epmdx/v1/registry.grpc.pb.h"
#include "server/api/service.h"

namespace epmdx::grpcapi {

class FleetService final : public v1::Fleet::CallbackService {
 public:
  explicit FleetService(api::Service& api) : api_(api) {}

  grpc::ServerUnaryReactor* ListSources(grpc::CallbackServerContext* ctx,
                                        const v1::ListSourcesRequest* req,
                                        v1::ListSourcesResponse* resp) override;

 private:
  api::Service& api_;
};

}  // namespace epmdx::grpcapi
