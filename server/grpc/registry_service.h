#pragma once

// epmdx.v1.Registry over gRPC's callback API: a thin translation onto the Registry.

#include <grpcpp/grpcpp.h>

#include "epmdx/v1/registry.grpc.pb.h"
#include "server/api/auth.h"
#include "server/grpc/watch_reactor.h"
#include "server/registry/registry.h"

namespace epmdx::grpcapi {

class RegistryService final : public v1::Registry::CallbackService {
 public:
  RegistryService(registry::Registry& registry, const api::TokenStore& tokens, size_t max_watchers);

  grpc::ServerUnaryReactor* ListNodes(grpc::CallbackServerContext* ctx,
                                      const v1::ListNodesRequest* req,
                                      v1::ListNodesResponse* resp) override;
  grpc::ServerUnaryReactor* GetNode(grpc::CallbackServerContext* ctx, const v1::GetNodeRequest* req,
                                    v1::Node* resp) override;
  grpc::ServerWriteReactor<v1::WatchNodesResponse>* WatchNodes(
      grpc::CallbackServerContext* ctx, const v1::WatchNodesRequest* req) override;
  grpc::ServerUnaryReactor* EvictNode(grpc::CallbackServerContext* ctx,
                                      const v1::EvictNodeRequest* req,
                                      v1::EvictNodeResponse* resp) override;

  /// Ends every watch stream with UNAVAILABLE and refuses new ones.
  void beginShutdown();
  WatchSet& watches() { return watches_; }

 private:
  /// UNAUTHENTICATED / PERMISSION_DENIED, or OK with the caller in `who`.
  grpc::Status authorize(grpc::CallbackServerContext* ctx, api::Scope scope,
                         api::Principal* who = nullptr) const;

  registry::Registry& registry_;
  const api::TokenStore& tokens_;
  WatchSet watches_;
};

}  // namespace epmdx::grpcapi
