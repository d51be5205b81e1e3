#include "server/api/service.h"

#include "server/api/convert.h"
#include "server/api/node_host.h"
#include "server/common/log.h"

namespace epmdx::api {

std::string_view toString(Surface surface) {
  switch (surface) {
    case Surface::Grpc:
      return "grpc";
    case Surface::Sse:
      return "sse";
  }
  return "unknown";
}

WatchSlot& WatchSlot::operator=(WatchSlot&& other) noexcept {
  if (this != &other) {
    if (count_ != nullptr) {
      count_->fetch_sub(1);
    }
    count_ = std::exchange(other.count_, nullptr);
  }
  return *this;
}

WatchSlot::~WatchSlot() {
  if (count_ != nullptr) {
    count_->fetch_sub(1);
  }
}

std::string peerAddress(std::string_view peer) {
  // gRPC names a peer "ipv4:127.0.0.1:53316" or "ipv6:[::1]:53316" (some versions
  // percent-encode the brackets); HTTP already says "127.0.0.1:53316" / "[::1]:53316".
  for (std::string_view scheme : {"ipv4:", "ipv6:"}) {
    if (peer.substr(0, scheme.size()) == scheme) {
      peer.remove_prefix(scheme.size());
      break;
    }
  }
  std::string out;
  out.reserve(peer.size());
  for (size_t i = 0; i < peer.size(); ++i) {
    if (peer.substr(i, 3) == "%5B" || peer.substr(i, 3) == "%5b") {
      out += '[';
      i += 2;
    } else if (peer.substr(i, 3) == "%5D" || peer.substr(i, 3) == "%5d") {
      out += ']';
      i += 2;
    } else {
      out += peer[i];
    }
  }
  return out;
}

std::string notFoundMessage(std::string_view name) {
  std::string msg = "no node named \"" + log::printable(name) + "\"";
  if (const auto at = name.find('@'); at != std::string_view::npos && at > 0) {
    msg += " (epmd names have no host part: try `" + log::printable(name.substr(0, at)) + "`)";
  }
  return msg;
}

Service::Service(registry::Registry& registry, const TokenStore& tokens, size_t max_watchers)
    : registry_(registry),
      names_(ClusterNames::of(registry)),
      tokens_(tokens),
      max_watchers_(max_watchers) {}

Result<Principal, Error> Service::authenticate(std::string_view authorization, Scope scope) const {
  Principal who;
  switch (tokens_.check(authorization, scope, &who)) {
    case TokenStore::Check::Ok:
      return who;
    case TokenStore::Check::Unauthenticated:
      return makeErr(Error{Code::Unauthenticated,
                           authorization.empty()
                               ? "a bearer token is required (authorization: Bearer TOKEN)"
                               : "unknown bearer token",
                           {}});
    case TokenStore::Check::PermissionDenied:
      return makeErr(Error{Code::PermissionDenied,
                           std::string("the token lacks the \"") +
                               (scope == Scope::Read ? "read" : "evict") + "\" scope",
                           {}});
  }
  return makeErr(Error{Code::Internal, "unreachable", {}});
}

Result<std::optional<registry::ClusterId>, Error> Service::resolveCluster(
    std::string_view name, std::optional<registry::ClusterId> empty_means) const {
  if (name.empty()) {
    return empty_means;
  }
  if (auto id = registry_.findCluster(name)) {
    return std::optional<registry::ClusterId>(*id);
  }
  std::string known;
  for (size_t i = 0; i < registry_.clusterCount(); ++i) {
    known += (i ? ", " : "") + registry_.clusterName(static_cast<registry::ClusterId>(i));
  }
  return makeErr(
      Error{Code::InvalidArgument,
            "no cluster named \"" + log::printable(name) + "\" (clusters: " + known + ")",
            {}});
}

Result<v1::ListNodesResponse, Error> Service::list(std::string_view cluster) const {
  auto id = resolveCluster(cluster, std::nullopt);
  if (!id.ok()) {
    return makeErr(id.error());
  }
  const auto snapshot = registry_.list(id.value());
  v1::ListNodesResponse resp;
  resp.mutable_nodes()->Reserve(static_cast<int>(snapshot.nodes.size()));
  for (const auto& r : snapshot.nodes) {
    toProto(names_, *r, *resp.add_nodes());
  }
  resp.set_revision(snapshot.revision);
  return resp;
}

Result<v1::Node, Error> Service::get(std::string_view name, std::string_view cluster) const {
  auto id = resolveCluster(cluster, registry::kDefaultCluster);
  if (!id.ok()) {
    return makeErr(id.error());
  }
  auto r = registry_.find(name, *id.value());
  if (!r) {
    return makeErr(Error{Code::NotFound, notFoundMessage(name), {}});
  }
  v1::Node node;
  toProto(names_, *r, node);
  return node;
}

v1::ListClustersResponse Service::listClusters() const {
  const auto states = cluster_states_ ? cluster_states_() : std::vector<ClusterState>{};
  const auto stats = registry_.stats();
  v1::ListClustersResponse resp;
  resp.set_host(daemonHostNames().short_name);
  for (size_t i = 0; i < registry_.clusterCount(); ++i) {
    auto* c = resp.add_clusters();
    c->set_name(registry_.clusterName(static_cast<registry::ClusterId>(i)));
    c->set_nodes(static_cast<uint32_t>(stats.nodes_by_cluster[i]));
    if (i < states.size()) {
      c->set_port(states[i].port);
      for (const auto& a : states[i].addresses) {
        c->add_addresses(a);
      }
      c->set_serving(states[i].serving);
      c->set_names_from(states[i].names_from);
      c->set_lookups_from(states[i].lookups_from);
    }
  }
  return resp;
}

Result<v1::ListEventsResponse, Error> Service::listEvents(
    const v1::ListEventsRequest& request) const {
  if (request.limit() > kMaxEventsLimit) {
    return makeErr(Error{
        Code::InvalidArgument,
        "limit " + std::to_string(request.limit()) + " is over " + std::to_string(kMaxEventsLimit),
        {}});
  }
  auto id = resolveCluster(request.cluster(), std::nullopt);
  if (!id.ok()) {
    return makeErr(id.error());
  }
  const size_t limit = request.limit() == 0 ? kDefaultEventsLimit : request.limit();
  if (!request.has_after_revision()) {
    return eventsResponse(registry_.recentEvents(limit, id.value()));
  }
  // A page: the first events after the client's revision, so that paging with "after the
  // last one seen" skips nothing.
  const registry::Revision after = request.after_revision();
  auto snapshot = registry_.eventsAfter(limit, after, id.value());
  if (after > snapshot.revision) {
    // As for a watch: a revision this daemon never reached is a client's mistake (or one
    // from a clock that went back across a restart), not "nothing new".
    return makeErr(Error{Code::InvalidArgument,
                         "after_revision " + std::to_string(after) + " is in the future (current " +
                             std::to_string(snapshot.revision) + "; did the daemon restart?)",
                         {}});
  }
  if (after + 1 < snapshot.oldest_retained) {
    // Events right after it were compacted away: answering with what is left would lose
    // them silently. The same answer a watch from that revision gets.
    return makeErr(Error{Code::OutOfRange,
                         "events after revision " + std::to_string(after) +
                             " are no longer kept (oldest " +
                             std::to_string(snapshot.oldest_retained) + "): list again",
                         Error::Window{snapshot.oldest_retained, snapshot.revision}});
  }
  return eventsResponse(snapshot);
}

v1::ListEventsResponse Service::eventsResponse(
    const registry::Registry::EventSnapshot& snapshot) const {
  v1::ListEventsResponse resp;
  resp.mutable_events()->Reserve(static_cast<int>(snapshot.events.size()));
  for (const auto& e : snapshot.events) {
    toProto(names_, e, *resp.add_events());
  }
  resp.set_revision(snapshot.revision);
  resp.set_oldest_revision(snapshot.oldest_retained);
  return resp;
}

Result<registry::ClusterId, Error> Service::target(std::string_view name, std::string_view reason,
                                                   std::string_view cluster) const {
  if (name.empty()) {
    return makeErr(Error{Code::InvalidArgument, "name is required", {}});
  }
  if (reason.size() > kMaxReasonBytes) {
    return makeErr(Error{Code::InvalidArgument,
                         "reason is longer than " + std::to_string(kMaxReasonBytes) + " bytes",
                         {}});
  }
  auto id = resolveCluster(cluster, registry::kDefaultCluster);
  if (!id.ok()) {
    return makeErr(id.error());
  }
  return *id.value();
}

Result<v1::EvictNodeResponse, Error> Service::evict(const Principal& who, std::string_view peer,
                                                    const v1::EvictNodeRequest& request) {
  auto cluster = target(request.name(), request.reason(), request.cluster());
  if (!cluster.ok()) {
    return makeErr(cluster.error());
  }
  if (request.hold_seconds() > kMaxHoldSeconds) {
    return makeErr(Error{Code::InvalidArgument,
                         "hold_seconds is over " + std::to_string(kMaxHoldSeconds) + " (a week)",
                         {}});
  }
  const std::string actor = who.identity + "@" + peerAddress(peer);
  registry::EvictRequest order{.name = request.name(),
                               .cluster = cluster.value(),
                               .reason = registry::UnregisterReason::Evicted,
                               .actor = actor,
                               .detail = request.reason()};
  if (request.has_registration_id()) {
    order.expected_id = request.registration_id();
  }
  if (request.hold_seconds() > 0) {
    order.hold_for = std::chrono::seconds(request.hold_seconds());
  }
  auto evicted = registry_.evict(std::move(order));
  if (!evicted.ok()) {
    if (evicted.error() == registry::EvictError::NotFound) {
      return makeErr(Error{Code::NotFound, notFoundMessage(request.name()), {}});
    }
    return makeErr(Error{Code::FailedPrecondition,
                         "\"" + log::printable(request.name()) +
                             "\" is now held by another registration (not " +
                             std::to_string(request.registration_id()) + ")",
                         {}});
  }
  const auto& e = evicted.value();
  log::info("evicted", {{"cluster", registry_.clusterName(e.registration->cluster)},
                        {"name", log::printable(request.name())},
                        {"id", e.registration->id},
                        {"by", actor},
                        {"reason", log::printable(request.reason())}});
  v1::EvictNodeResponse resp;
  toProto(names_, *e.registration, *resp.mutable_node());
  resp.set_revision(e.revision);
  if (e.hold) {
    log::info("name held", {{"cluster", registry_.clusterName(e.hold->cluster)},
                            {"name", log::printable(e.hold->name)},
                            {"seconds", request.hold_seconds()},
                            {"by", actor}});
    toProto(names_, *e.hold, *resp.mutable_hold());
  }
  return resp;
}

Result<v1::ListHoldsResponse, Error> Service::listHolds(std::string_view cluster) const {
  auto id = resolveCluster(cluster, std::nullopt);
  if (!id.ok()) {
    return makeErr(id.error());
  }
  const auto snapshot = registry_.holds(id.value());
  v1::ListHoldsResponse resp;
  for (const auto& h : snapshot.holds) {
    toProto(names_, *h, *resp.add_holds());
  }
  resp.set_revision(snapshot.revision);
  return resp;
}

Result<v1::LiftHoldResponse, Error> Service::liftHold(const Principal& who, std::string_view peer,
                                                      const v1::LiftHoldRequest& request) {
  auto cluster = target(request.name(), request.reason(), request.cluster());
  if (!cluster.ok()) {
    return makeErr(cluster.error());
  }
  std::string actor = who.identity + "@" + peerAddress(peer);
  auto lifted = registry_.liftHold(request.name(), cluster.value(), actor, request.reason());
  if (!lifted.ok()) {
    return makeErr(Error{Code::NotFound,
                         "no hold on \"" + log::printable(request.name()) + "\" in cluster " +
                             registry_.clusterName(cluster.value()),
                         {}});
  }
  const auto& l = lifted.value();
  log::info("hold lifted", {{"cluster", registry_.clusterName(l.hold->cluster)},
                            {"name", log::printable(l.hold->name)},
                            {"by", actor},
                            {"reason", log::printable(request.reason())}});
  v1::LiftHoldResponse resp;
  toProto(names_, *l.hold, *resp.mutable_hold());
  resp.set_revision(l.revision);
  return resp;
}

Result<OpenedWatch, Error> Service::openWatch(Surface surface, const WatchParams& params,
                                              registry::WatchHub::WakeFn wake) {
  if (params.initial && params.after) {
    return makeErr(Error{
        Code::InvalidArgument, "an initial state and a start revision exclude each other", {}});
  }
  if (draining_) {
    return makeErr(Error{Code::Unavailable, "epmdx is shutting down", {}});
  }
  auto cluster = resolveCluster(params.cluster, std::nullopt);
  if (!cluster.ok()) {
    return makeErr(cluster.error());
  }
  auto& count = watchers_[static_cast<size_t>(surface)];
  if (count.fetch_add(1) >= max_watchers_) {
    count.fetch_sub(1);
    return makeErr(Error{Code::ResourceExhausted,
                         "too many " + std::string(toString(surface)) +
                             " watch streams (--max-watchers=" + std::to_string(max_watchers_) +
                             "); try again later",
                         {}});
  }
  OpenedWatch w;
  w.slot = WatchSlot(&count);
  const std::optional<registry::ClusterId> only = cluster.value();
  if (params.initial) {
    auto [snapshot, watch] = registry_.listAndWatch(std::move(wake));
    std::vector<registry::RegistrationPtr> nodes;
    for (auto& r : snapshot.nodes) {
      if (!only || r->cluster == *only) {
        nodes.push_back(std::move(r));
      }
    }
    w.cursor = WatchCursor(std::move(watch), snapshot.revision, only, names_);
    w.cursor.startWithInitial(std::move(nodes));
    return w;
  }
  const registry::Revision start = params.after ? *params.after + 1 : 0;
  auto watch = registry_.watch(start, std::move(wake));
  if (!watch.ok()) {
    const auto& rej = watch.error();
    const Error::Window window{rej.oldest_retained, rej.current};
    if (rej.code == registry::WatchRejection::Code::Compacted) {
      return makeErr(Error{Code::OutOfRange,
                           "revision " + std::to_string(*params.after) +
                               " is older than the kept history (oldest " +
                               std::to_string(rej.oldest_retained) + "): list again",
                           window});
    }
    // A revision from the future: the client is wrong, or the clock went back across a
    // restart. gRPC reports INVALID_ARGUMENT; SSE, seeing the window, asks for a resync.
    return makeErr(Error{Code::InvalidArgument,
                         "revision " + std::to_string(*params.after) +
                             " is in the future (current " + std::to_string(rej.current) +
                             "; did the daemon restart?): list again",
                         window});
  }
  const registry::Revision delivered = watch.value()->nextRevision() - 1;
  w.cursor = WatchCursor(std::move(watch.value()), delivered, only, names_);
  return w;
}

registry::RegistryStats Service::stats() const {
  return registry_.stats();
}

std::vector<std::string> Service::clusterLabels() const {
  std::vector<std::string> out;
  out.reserve(registry_.clusterCount());
  for (size_t i = 0; i < registry_.clusterCount(); ++i) {
    out.push_back(registry_.clusterName(static_cast<registry::ClusterId>(i)));
  }
  return out;
}

registry::WatchPtr Service::subscribe(registry::WatchHub::WakeFn wake) {
  // From the next change: a watch starting there is never refused.
  return std::move(registry_.watch(0, std::move(wake)).value());
}

}  // namespace epmdx::api
