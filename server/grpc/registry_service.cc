#include "server/grpc/registry_service.h"

namespace epmdx::grpcapi {
namespace {

grpc::ServerUnaryReactor* finish(grpc::CallbackServerContext* ctx, grpc::Status status) {
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(std::move(status));
  return reactor;
}

/// A reactor that only finishes with an error (the stream never starts).
class FailedWrite final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  explicit FailedWrite(grpc::Status status) { Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

}  // namespace

grpc::Status toStatus(const api::Error& error) {
  return {static_cast<grpc::StatusCode>(error.code), error.message};
}

RegistryService::RegistryService(api::Service& api) : api_(api), encoded_(api.clusterNames()) {}

Result<api::Principal, api::Error> RegistryService::authorize(grpc::CallbackServerContext* ctx,
                                                              api::Scope scope) const {
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  const std::string_view header =
      it == md.end() ? std::string_view() : std::string_view(it->second.data(), it->second.size());
  return api_.authenticate(header, scope);
}

grpc::ServerUnaryReactor* RegistryService::ListNodes(grpc::CallbackServerContext* ctx,
                                                     const v1::ListNodesRequest* req,
                                                     v1::ListNodesResponse* resp) {
  if (auto who = authorize(ctx, api::Scope::Read); !who.ok()) {
    return finish(ctx, toStatus(who.error()));
  }
  auto list = api_.list(req->cluster(), req->source(), req->partial() == v1::PARTIAL_ABORT);
  if (!list.ok()) {
    return finish(ctx, toStatus(list.error()));
  }
  *resp = std::move(list.value());
  return finish(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* RegistryService::ListClusters(grpc::CallbackServerContext* ctx,
                                                        const v1::ListClustersRequest*,
                                                        v1::ListClustersResponse* resp) {
  if (auto who = authorize(ctx, api::Scope::Read); !who.ok()) {
    return finish(ctx, toStatus(who.error()));
  }
  *resp = api_.listClusters();
  return finish(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* RegistryService::GetNode(grpc::CallbackServerContext* ctx,
                                                   const v1::GetNodeRequest* req, v1::Node* resp) {
  if (auto who = authorize(ctx, api::Scope::Read); !who.ok()) {
    return finish(ctx, toStatus(who.error()));
  }
  auto node = api_.get(req->name(), req->cluster(), req->source());
  if (!node.ok()) {
    return finish(ctx, toStatus(node.error()));
  }
  *resp = std::move(node.value());
  return finish(ctx, grpc::Status::OK);
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* RegistryService::WatchNodes(
    grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* req) {
  if (auto who = authorize(ctx, api::Scope::Read); !who.ok()) {
    return new FailedWrite(toStatus(who.error()));
  }
  v1::WatchNodesRequest request;
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (req->Dump(&slices).ok()) {
    for (const auto& s : slices) {
      bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
  }
  if (!request.ParseFromString(bytes)) {
    return new FailedWrite({grpc::StatusCode::INVALID_ARGUMENT, "malformed WatchNodesRequest"});
  }
  return new WatchReactor(ctx, api_, encoded_, watches_, request);
}

grpc::ServerUnaryReactor* RegistryService::EvictNode(grpc::CallbackServerContext* ctx,
                                                     const v1::EvictNodeRequest* req,
                                                     v1::EvictNodeResponse* resp) {
  auto who = authorize(ctx, api::Scope::Evict);
  if (!who.ok()) {
    return finish(ctx, toStatus(who.error()));
  }
  auto evicted = api_.evict(who.value(), ctx->peer(), *req);
  if (!evicted.ok()) {
    return finish(ctx, toStatus(evicted.error()));
  }
  *resp = std::move(evicted.value());
  return finish(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* RegistryService::ListHolds(grpc::CallbackServerContext* ctx,
                                                     const v1::ListHoldsRequest* req,
                                                     v1::ListHoldsResponse* resp) {
  if (auto who = authorize(ctx, api::Scope::Read); !who.ok()) {
    return finish(ctx, toStatus(who.error()));
  }
  auto holds = api_.listHolds(req->cluster(), req->source());
  if (!holds.ok()) {
    return finish(ctx, toStatus(holds.error()));
  }
  *resp = std::move(holds.value());
  return finish(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* RegistryService::LiftHold(grpc::CallbackServerContext* ctx,
                                                    const v1::LiftHoldRequest* req,
                                                    v1::LiftHoldResponse* resp) {
  auto who = authorize(ctx, api::Scope::Evict);
  if (!who.ok()) {
    return finish(ctx, toStatus(who.error()));
  }
  auto lifted = api_.liftHold(who.value(), ctx->peer(), *req);
  if (!lifted.ok()) {
    return finish(ctx, toStatus(lifted.error()));
  }
  *resp = std::move(lifted.value());
  return finish(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* RegistryService::ListEvents(grpc::CallbackServerContext* ctx,
                                                      const v1::ListEventsRequest* req,
                                                      v1::ListEventsResponse* resp) {
  if (auto who = authorize(ctx, api::Scope::Read); !who.ok()) {
    return finish(ctx, toStatus(who.error()));
  }
  auto events = api_.listEvents(*req);
  if (!events.ok()) {
    return finish(ctx, toStatus(events.error()));
  }
  *resp = std::move(events.value());
  return finish(ctx, grpc::Status::OK);
}

void RegistryService::beginShutdown() {
  watches_.shutdownAll();
}

}  // namespace epmdx::grpcapi
