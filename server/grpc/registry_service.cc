#include "server/grpc/registry_service.h"

#include "server/api/convert.h"
#include "server/common/log.h"

namespace epmdx::grpcapi {
namespace {

grpc::ServerUnaryReactor* finish(grpc::CallbackServerContext* ctx, grpc::Status status) {
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(std::move(status));
  return reactor;
}

/// A reactor that only finishes with an error (the stream never starts).
class FailedWrite final : public grpc::ServerWriteReactor<v1::WatchNodesResponse> {
 public:
  explicit FailedWrite(grpc::Status status) { Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

}  // namespace

RegistryService::RegistryService(registry::Registry& registry, const api::TokenStore& tokens,
                                 size_t max_watchers)
    : registry_(registry), tokens_(tokens), watches_(max_watchers) {}

grpc::Status RegistryService::authorize(grpc::CallbackServerContext* ctx, api::Scope scope,
                                        api::Principal* who) const {
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  const std::string_view header =
      it == md.end() ? std::string_view() : std::string_view(it->second.data(), it->second.size());
  switch (tokens_.check(header, scope, who)) {
    case api::TokenStore::Check::Ok:
      return grpc::Status::OK;
    case api::TokenStore::Check::Unauthenticated:
      return {grpc::StatusCode::UNAUTHENTICATED,
              "missing or unknown bearer token (authorization: Bearer TOKEN)"};
    case api::TokenStore::Check::PermissionDenied:
      return {grpc::StatusCode::PERMISSION_DENIED,
              std::string("the token lacks the \"") +
                  (scope == api::Scope::Read ? "read" : "evict") + "\" scope"};
  }
  return {grpc::StatusCode::INTERNAL, "unreachable"};
}

grpc::ServerUnaryReactor* RegistryService::ListNodes(grpc::CallbackServerContext* ctx,
                                                     const v1::ListNodesRequest*,
                                                     v1::ListNodesResponse* resp) {
  if (auto st = authorize(ctx, api::Scope::Read); !st.ok()) {
    return finish(ctx, st);
  }
  const auto snapshot = registry_.list();
  resp->mutable_nodes()->Reserve(static_cast<int>(snapshot.nodes.size()));
  for (const auto& r : snapshot.nodes) {
    api::toProto(*r, *resp->add_nodes());
  }
  resp->set_revision(snapshot.revision);
  return finish(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* RegistryService::GetNode(grpc::CallbackServerContext* ctx,
                                                   const v1::GetNodeRequest* req, v1::Node* resp) {
  if (auto st = authorize(ctx, api::Scope::Read); !st.ok()) {
    return finish(ctx, st);
  }
  auto r = registry_.find(req->name());
  if (!r) {
    return finish(ctx, {grpc::StatusCode::NOT_FOUND, "no node named \"" + req->name() + "\""});
  }
  api::toProto(*r, *resp);
  return finish(ctx, grpc::Status::OK);
}

grpc::ServerWriteReactor<v1::WatchNodesResponse>* RegistryService::WatchNodes(
    grpc::CallbackServerContext* ctx, const v1::WatchNodesRequest* req) {
  if (auto st = authorize(ctx, api::Scope::Read); !st.ok()) {
    return new FailedWrite(st);
  }
  return new WatchReactor(registry_, watches_, *req);
}

grpc::ServerUnaryReactor* RegistryService::EvictNode(grpc::CallbackServerContext* ctx,
                                                     const v1::EvictNodeRequest* req,
                                                     v1::EvictNodeResponse* resp) {
  api::Principal who;
  if (auto st = authorize(ctx, api::Scope::Evict, &who); !st.ok()) {
    return finish(ctx, st);
  }
  if (req->reason().size() > 256) {
    return finish(ctx, {grpc::StatusCode::INVALID_ARGUMENT, "reason is longer than 256 bytes"});
  }
  std::optional<registry::RegistrationId> expected;
  if (req->has_registration_id()) {
    expected = req->registration_id();
  }
  const std::string actor = who.identity + "@" + ctx->peer();
  auto evicted = registry_.evict(req->name(), expected, registry::UnregisterReason::Evicted, actor,
                                 req->reason());
  if (!evicted.ok()) {
    if (evicted.error() == registry::EvictError::NotFound) {
      return finish(ctx, {grpc::StatusCode::NOT_FOUND, "no node named \"" + req->name() + "\""});
    }
    return finish(ctx, {grpc::StatusCode::FAILED_PRECONDITION,
                        "\"" + req->name() + "\" is now held by another registration"});
  }
  log::info("evicted", {{"name", log::printable(req->name())},
                        {"id", evicted.value().registration->id},
                        {"by", actor},
                        {"reason", log::printable(req->reason())}});
  api::toProto(*evicted.value().registration, *resp->mutable_node());
  resp->set_revision(evicted.value().revision);
  return finish(ctx, grpc::Status::OK);
}

void RegistryService::beginShutdown() {
  watches_.shutdownAll();
}

}  // namespace epmdx::grpcapi
