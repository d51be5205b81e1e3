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

Result<registry::ClusterFilter, Error> Service::select(std::string_view cluster,
                                                       std::string_view source,
                                                       bool default_cluster) const {
  if (!fleet_) {
    if (!source.empty()) {
      return makeErr(Error{Code::InvalidArgument,
                           "source \"" + log::printable(source) +
                               "\": this is an epmdx daemon, not a fleet relay (it has no sources)",
                           {}});
    }
    auto id = resolveCluster(
        cluster, default_cluster ? std::optional<registry::ClusterId>(registry::kDefaultCluster)
                                 : std::nullopt);
    if (!id.ok()) {
      return makeErr(id.error());
    }
    return registry::ClusterFilter(id.value());
  }
  if (!source.empty() && !fleet_->knowsSource(source)) {
    std::string known;
    const v1::ListSourcesResponse sources = fleet_->listSources();
    for (const auto& s : sources.sources()) {
      known += (known.empty() ? "" : ", ") + s.name();
    }
    return makeErr(Error{Code::InvalidArgument,
                         "no source named \"" + log::printable(source) +
                             "\" (sources: " + (known.empty() ? "none yet" : known) + ")",
                         {}});
  }
  std::optional<std::string> want_cluster;
  if (!cluster.empty()) {
    want_cluster = std::string(cluster);
  } else if (default_cluster) {
    want_cluster = "default";
  }
  std::optional<std::string> want_source;
  if (!source.empty()) {
    want_source = std::string(source);
  }
  return registry::ClusterFilter::select(registry_.clusters(), std::move(want_cluster),
                                         std::move(want_source));
}

Result<registry::RegistrationPtr, Error> Service::findOne(std::string_view name,
                                                          std::string_view cluster,
                                                          std::string_view source) const {
  auto filter = select(cluster, source, true);
  if (!filter.ok()) {
    return makeErr(filter.error());
  }
  std::vector<registry::RegistrationPtr> found;
  const auto table = registry_.clusters();
  for (size_t i = 0; i < table->size(); ++i) {
    const auto id = static_cast<registry::ClusterId>(i);
    if (filter.value().matches(id)) {
      if (auto r = registry_.find(name, id)) {
        found.push_back(std::move(r));
      }
    }
  }
  if (found.empty()) {
    return makeErr(Error{Code::NotFound, notFoundMessage(name), {}});
  }
  if (found.size() > 1) {
    std::string where;
    for (const auto& r : found) {
      where += (where.empty() ? "" : ", ") + names_.source(r->cluster);
    }
    return makeErr(Error{Code::FailedPrecondition,
                         "\"" + log::printable(name) + "\" is registered on " +
                             std::to_string(found.size()) + " sources (" + where +
                             "): choose one with source",
                         {}});
  }
  return found.front();
}

Result<v1::ListSourcesResponse, Error> Service::listSources() const {
  if (!fleet_) {
    return makeErr(
        Error{Code::Unimplemented,
              "this is an epmdx daemon, not a fleet relay (epmdx-fleet): it has no sources",
              {}});
  }
  return fleet_->listSources();
}

Result<v1::ListNodesResponse, Error> Service::list(std::string_view cluster,
                                                   std::string_view source,
                                                   bool partial_abort) const {
  auto filter = select(cluster, source, false);
  if (!filter.ok()) {
    return makeErr(filter.error());
  }
  v1::ListNodesResponse resp;
  if (fleet_) {
    *resp.mutable_coverage() = fleet_->coverage(source);
    if (partial_abort && resp.coverage().unreachable_size() > 0) {
      std::string why;
      for (const auto& w : resp.coverage().warnings()) {
        why += (why.empty() ? "" : "; ") + w;
      }
      return makeErr(
          Error{Code::Unavailable, "partial answer refused (partial=abort): " + why, {}});
    }
  }
  const auto snapshot = registry_.list(filter.value());
  resp.mutable_nodes()->Reserve(static_cast<int>(snapshot.nodes.size()));
  for (const auto& r : snapshot.nodes) {
    toProto(names_, *r, *resp.add_nodes());
  }
  resp.set_revision(snapshot.revision);
  return resp;
}

Result<v1::Node, Error> Service::get(std::string_view name, std::string_view cluster,
                                     std::string_view source) const {
  auto r = findOne(name, cluster, source);
  if (!r.ok()) {
    return makeErr(r.error());
  }
  v1::Node node;
  toProto(names_, *r.value(), node);
  return node;
}

v1::ListClustersResponse Service::listClusters() const {
  const auto states = cluster_states_ ? cluster_states_() : std::vector<ClusterState>{};
  const auto stats = registry_.stats();
  v1::ListClustersResponse resp;
  resp.set_host(daemonHostNames().short_name);
  resp.set_boot_epoch(registry_.options().initial_revision);
  resp.set_instance(instance_.empty() ? resp.host() : instance_);
  for (size_t i = 0; i < registry_.clusterCount(); ++i) {
    const auto id = static_cast<registry::ClusterId>(i);
    if (fleet_ && names_.source(id).empty()) {
      continue;  // A relay's own default cluster holds nothing: its clusters are its sources'.
    }
    auto* c = resp.add_clusters();
    c->set_name(registry_.clusterName(id));
    c->set_source(names_.source(id));
    c->set_nodes(static_cast<uint32_t>(stats.nodes_by_cluster[i]));
    if (fleet_) {
      // Where the source serves it (its epmd port), as the source told the relay.
      if (auto told = fleet_->sourceCluster(id)) {
        c->set_port(told->port());
        *c->mutable_addresses() = told->addresses();
        c->set_serving(told->serving());
        c->set_names_from(told->names_from());
        c->set_lookups_from(told->lookups_from());
      }
    } else if (i < states.size()) {
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
  auto id = select(request.cluster(), request.source(), false);
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

Result<registry::ClusterId, Error> Service::localTarget(std::string_view name,
                                                        std::string_view reason,
                                                        std::string_view cluster,
                                                        std::string_view source) const {
  if (!source.empty()) {
    return makeErr(Error{Code::InvalidArgument,
                         "source \"" + log::printable(source) +
                             "\": this is an epmdx daemon, not a fleet relay (it has no sources)",
                         {}});
  }
  return target(name, reason, cluster);
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

Result<v1::EvictNodeResponse, Error> Service::evictThroughFleet(
    const Principal& who, std::string_view peer, const v1::EvictNodeRequest& request) {
  auto node = findOne(request.name(), request.cluster(), request.source());
  if (!node.ok()) {
    return makeErr(node.error());
  }
  const registry::Registration& r = *node.value();
  if (request.has_registration_id() && request.registration_id() != r.id) {
    return makeErr(Error{Code::FailedPrecondition,
                         "\"" + log::printable(request.name()) +
                             "\" is now held by another registration (not " +
                             std::to_string(request.registration_id()) + ")",
                         {}});
  }
  v1::EvictNodeRequest forward = request;
  forward.set_cluster(names_(r.cluster));
  forward.clear_source();
  forward.set_registration_id(r.id);
  // The source records the relay's identity (its token) and, with it, the caller's.
  const std::string caller = who.identity + "@" + peerAddress(peer);
  forward.set_on_behalf_of(
      request.on_behalf_of().empty() ? caller : request.on_behalf_of() + " via " + caller);
  auto done = fleet_->evict(r, std::move(forward));
  if (done.ok()) {
    log::info("evicted through the source", {{"source", names_.source(r.cluster)},
                                             {"cluster", names_(r.cluster)},
                                             {"name", log::printable(request.name())},
                                             {"id", r.id},
                                             {"by", caller}});
  }
  return done;
}

Result<v1::EvictNodeResponse, Error> Service::evict(const Principal& who, std::string_view peer,
                                                    const v1::EvictNodeRequest& request) {
  if (request.on_behalf_of().size() > kMaxReasonBytes) {
    return makeErr(
        Error{Code::InvalidArgument,
              "on_behalf_of is longer than " + std::to_string(kMaxReasonBytes) + " bytes",
              {}});
  }
  if (request.hold_seconds() > kMaxHoldSeconds) {
    return makeErr(Error{Code::InvalidArgument,
                         "hold_seconds is over " + std::to_string(kMaxHoldSeconds) + " (a week)",
                         {}});
  }
  if (fleet_) {
    return evictThroughFleet(who, peer, request);
  }
  auto cluster = localTarget(request.name(), request.reason(), request.cluster(), request.source());
  if (!cluster.ok()) {
    return makeErr(cluster.error());
  }
  const registry::Revision epoch = registry_.options().initial_revision;
  if (request.has_boot_epoch() && request.boot_epoch() != epoch) {
    return makeErr(Error{Code::FailedPrecondition,
                         "the daemon restarted: its boot epoch is " + std::to_string(epoch) +
                             ", not " + std::to_string(request.boot_epoch()),
                         {}});
  }
  std::string actor = who.identity + "@" + peerAddress(peer);
  if (!request.on_behalf_of().empty()) {
    actor += " for " + log::printable(request.on_behalf_of());
  }
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

Result<v1::ListHoldsResponse, Error> Service::listHolds(std::string_view cluster,
                                                        std::string_view source) const {
  auto id = select(cluster, source, false);
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
  std::string actor = who.identity + "@" + peerAddress(peer);
  if (fleet_) {
    if (request.source().empty() || !fleet_->knowsSource(request.source())) {
      return makeErr(Error{Code::InvalidArgument,
                           "a relay lifts a hold on one source: set source to a known source",
                           {}});
    }
    v1::LiftHoldRequest forward = request;
    forward.clear_source();
    forward.set_reason(request.reason().empty() ? "for " + actor
                                                : request.reason() + " (for " + actor + ")");
    return fleet_->liftHold(request.source(), std::move(forward));
  }
  auto cluster = localTarget(request.name(), request.reason(), request.cluster(), request.source());
  if (!cluster.ok()) {
    return makeErr(cluster.error());
  }
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
  auto cluster = select(params.cluster, params.source, false);
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
  const registry::ClusterFilter& only = cluster.value();
  if (params.initial) {
    auto [snapshot, watch] = registry_.listAndWatch(std::move(wake));
    std::vector<registry::RegistrationPtr> nodes;
    for (auto& r : snapshot.nodes) {
      if (only.matches(r->cluster)) {
        nodes.push_back(std::move(r));
      }
    }
    w.cursor = WatchCursor(std::move(watch), snapshot.revision, only, names_);
    w.cursor.followCoverage(fleet_, params.source);
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
  w.cursor.followCoverage(fleet_, params.source);
  return w;
}

registry::RegistryStats Service::stats() const {
  return registry_.stats();
}

std::vector<std::string> Service::clusterLabels() const {
  std::vector<std::string> out;
  out.reserve(registry_.clusterCount());
  for (size_t i = 0; i < registry_.clusterCount(); ++i) {
    const auto id = static_cast<registry::ClusterId>(i);
    // A relay's clusters are its sources': "pod-a/default" keeps the series apart.
    out.push_back(names_.source(id).empty() ? registry_.clusterName(id)
                                            : names_.source(id) + "/" + registry_.clusterName(id));
  }
  return out;
}

registry::WatchPtr Service::subscribe(registry::WatchHub::WakeFn wake) {
  // From the next change: a watch starting there is never refused.
  return std::move(registry_.watch(0, std::move(wake)).value());
}

}  // namespace epmdx::api
