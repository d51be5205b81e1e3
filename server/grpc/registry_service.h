#pragma once

// epmdx.v1.Registry over gRPC's callback API: requests become api::Service calls, and
// api errors become gRPC statuses. WatchNodes is a raw method (bytes in, bytes out) so that
// every event is serialized once and its bytes shared by all streams (see EncodedEvents).

#include <grpcpp/grpcpp.h>

#include "epmdx/v1/registry.grpc.pb.h"
#include "server/api/encoded_events.h"
#include "server/api/service.h"
#include "server/grpc/watch_reactor.h"

namespace epmdx::grpcapi {

using ServiceBase = v1::Registry::WithCallbackMethod_ListNodes<
    v1::Registry::WithCallbackMethod_GetNode<v1::Registry::WithRawCallbackMethod_WatchNodes<
        v1::Registry::WithCallbackMethod_EvictNode<v1::Registry::WithCallbackMethod_ListClusters<
            v1::Registry::WithCallbackMethod_ListHolds<v1::Registry::WithCallbackMethod_LiftHold<
                v1::Registry::WithCallbackMethod_ListEvents<v1::Registry::Service>>>>>>>>;

/// The gRPC status for an api::Error.
grpc::Status toStatus(const api::Error& error);

class RegistryService final : public ServiceBase {
 public:
  explicit RegistryService(api::Service& api);

  grpc::ServerUnaryReactor* ListNodes(grpc::CallbackServerContext* ctx,
                                      const v1::ListNodesRequest* req,
                                      v1::ListNodesResponse* resp) override;
  grpc::ServerUnaryReactor* GetNode(grpc::CallbackServerContext* ctx, const v1::GetNodeRequest* req,
                                    v1::Node* resp) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* WatchNodes(grpc::CallbackServerContext* ctx,
                                                         const grpc::ByteBuffer* req) override;
  grpc::ServerUnaryReactor* EvictNode(grpc::CallbackServerContext* ctx,
                                      const v1::EvictNodeRequest* req,
                                      v1::EvictNodeResponse* resp) override;
  grpc::ServerUnaryReactor* ListClusters(grpc::CallbackServerContext* ctx,
                                         const v1::ListClustersRequest* req,
                                         v1::ListClustersResponse* resp) override;

  grpc::ServerUnaryReactor* ListHolds(grpc::CallbackServerContext* ctx,
                                      const v1::ListHoldsRequest* req,
                                      v1::ListHoldsResponse* resp) override;
  grpc::ServerUnaryReactor* LiftHold(grpc::CallbackServerContext* ctx,
                                     const v1::LiftHoldRequest* req,
                                     v1::LiftHoldResponse* resp) override;
  grpc::ServerUnaryReactor* ListEvents(grpc::CallbackServerContext* ctx,
                                       const v1::ListEventsRequest* req,
                                       v1::ListEventsResponse* resp) override;

  /// Ends every watch stream with UNAVAILABLE (new ones are refused by api::Service).
  void beginShutdown();
  WatchSet& watches() { return watches_; }

 private:
  /// The caller, or the UNAUTHENTICATED / PERMISSION_DENIED error.
  Result<api::Principal, api::Error> authorize(grpc::CallbackServerContext* ctx,
                                               api::Scope scope) const;

  api::Service& api_;
  api::EncodedEvents encoded_;
  WatchSet watches_;
};

}  // namespace epmdx::grpcapi
