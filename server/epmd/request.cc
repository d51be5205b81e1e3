#include "server/epmd/request.h"

#include <sys/socket.h>

#include <chrono>
#include <cstring>
#include <optional>

#include "server/common/endpoint_text.h"
#include "server/common/log.h"
#include "server/epmd/peer.h"

namespace epmdx::epmd {
namespace {

// A scanner can send thousands of refused requests: one warning per interval, with the count.
constexpr std::chrono::seconds kPolicyLogInterval{10};

std::optional<tcp::endpoint> localEndpoint(int fd) {
  tcp::endpoint local;
  socklen_t len = static_cast<socklen_t>(local.capacity());
  if (::getsockname(fd, local.data(), &len) != 0) {
    return std::nullopt;  // Counts as non-local.
  }
  local.resize(len);
  return local;
}

void refusedByPolicy(SessionContext& ctx, int code, const tcp::endpoint& remote) {
  ++(code == kPort2Req  ? ctx.metrics.policy_refused_port2
     : code == kDumpReq ? ctx.metrics.policy_refused_dump
                        : ctx.metrics.policy_refused_names);
  if (log::enabled(log::Level::Debug)) {  // A scanner's flood: build no fields without -d.
    log::debug("request refused by the access policy",
               {{"request", requestName(code)}, {"peer", formatEndpoint(remote)}});
  }
  const auto now = std::chrono::steady_clock::now();
  ++ctx.policy_refusals_unlogged;
  if (now < ctx.policy_log_after) {
    return;
  }
  log::warn("refused by the access policy",
            {{"peer", formatEndpoint(remote)},
             {"request", requestName(code)},
             {"refusals", ctx.policy_refusals_unlogged},
             {"next_log_in_s", static_cast<int64_t>(kPolicyLogInterval.count())}});
  ctx.policy_refusals_unlogged = 0;
  ctx.policy_log_after = now + kPolicyLogInterval;
}

void refused(SessionContext& ctx, DecodeError e, int code, const tcp::endpoint& remote) {
  if (e == DecodeError::PolicyRefused) {
    refusedByPolicy(ctx, code, remote);
    return;
  }
  const bool not_allowed = e == DecodeError::NotLocal || e == DecodeError::StopNotAllowed;
  ++(not_allowed ? ctx.metrics.refused : ctx.metrics.malformed);
  log::warn("refused packet", {{"peer", formatEndpoint(remote)},
                               {"request", requestName(code)},
                               {"code", code},
                               {"reason", std::string(toString(e))}});
}

std::string answerPort2(SessionContext& ctx, const Port2Request& req, const tcp::endpoint& remote) {
  ++ctx.metrics.req_port2;
  auto r = ctx.registry.find(req.name);
  ++(r ? ctx.metrics.lookups_found : ctx.metrics.lookups_not_found);
  if (log::enabled(log::Level::Debug)) {
    log::debug("request", {{"request", requestName(kPort2Req)},
                           {"name", log::printable(req.name)},
                           {"result", r ? "found" : "not_found"},
                           {"peer", formatEndpoint(remote)}});
  }
  return r ? encodePort2Found(*r) : encodePort2NotFound();
}

}  // namespace

Access decideAccess(const SessionContext& ctx, const tcp::endpoint& remote, int fd,
                    bool lookup_only) {
  Access access;
  access.relaxed = ctx.options.relaxed;
  if (!lookup_only) {
    access.local_peer = isLocalPeer(remote, [fd] { return localEndpoint(fd); });
  }
  if (ctx.policy) {
    // A lookup's fast path asks only what a lookup needs: no CIDR walk for NAMES per lookup.
    if (!lookup_only) {
      access.may_list = ctx.policy->names.allows(remote.address());
    }
    access.may_resolve = ctx.policy->lookups.allows(remote.address());
  }
  return access;
}

Outcome serveRequest(SessionContext& ctx, const FrameAssembler& frame, const Access& access,
                     const tcp::endpoint& remote) {
  const int code = frame.body()[0];
  auto decoded = decodeRequest(frame.body(), frame.bodySize(), access);
  if (!decoded) {
    refused(ctx, decoded.error(), code, remote);
    return Refused{};
  }
  if (const auto* lookup = std::get_if<Port2Request>(&decoded.value())) {
    return Answer{answerPort2(ctx, *lookup, remote)};
  }
  return std::move(decoded.value());
}

}  // namespace epmdx::epmd
