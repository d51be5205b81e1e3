#include "server/grpc/fleet_service.h"

#include "server/grpc/registry_service.h"

namespace epmdx::grpcapi {

grpc::ServerUnaryReactor* FleetService::ListSources(grpc::CallbackServerContext* ctx,
                                                    const v1::ListSourcesRequest*,
                                                    v1::ListSourcesResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  const std::string_view header =
      it == md.end() ? std::string_view() : std::string_view(it->second.data(), it->second.size());
  if (auto who = api_.authenticate(header, api::Scope::Read); !who.ok()) {
    reactor->Finish(toStatus(who.error()));
    return reactor;
  }
  auto sources = api_.listSources();
  if (!sources.ok()) {
    reactor->Finish(toStatus(sources.error()));
    return reactor;
  }
  *resp = std::move(sources.value());
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace epmdx::grpcapi
