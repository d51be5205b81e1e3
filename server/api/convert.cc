#include "server/api/convert.h"

#include "server/api/node_host.h"
#include "server/common/release_helper.h"

namespace epmdx::api {

ClusterNames::ClusterNames(std::vector<std::string> names) {
  const size_t n = names.size();
  table_ = std::make_shared<const registry::ClusterTable>(std::move(names), n);
}

ClusterNames ClusterNames::of(const registry::Registry& registry) {
  return ClusterNames(std::shared_ptr<const registry::ClusterTable>(registry.clusters()));
}

const std::string& ClusterNames::operator()(registry::ClusterId cluster) const {
  static const std::string kDefault = "default";
  return table_ ? table_->name(cluster) : kDefault;
}

const std::string& ClusterNames::source(registry::ClusterId cluster) const {
  static const std::string kNone;
  return table_ ? table_->source(cluster) : kNone;
}

void setTimestamp(int64_t ns, google::protobuf::Timestamp& ts) {
  ts.set_seconds(ns / 1000000000);
  ts.set_nanos(static_cast<int32_t>(ns % 1000000000));
}

void toProto(const ClusterNames& names, const registry::Registration& r, v1::Node& out) {
  const auto& n = r.node;
  out.set_name(n.name);
  out.set_port(n.port);
  out.set_node_type(n.node_type == 77   ? v1::NODE_TYPE_NORMAL
                    : n.node_type == 72 ? v1::NODE_TYPE_HIDDEN
                                        : v1::NODE_TYPE_OTHER);
  out.set_node_type_raw(n.node_type);
  out.set_protocol(n.protocol);
  out.set_highest_version(n.highest_version);
  out.set_lowest_version(n.lowest_version);
  out.set_extra(n.extra);
  out.set_creation(r.creation());
  out.set_registration_id(r.id);
  out.set_peer_address(r.origin.peer_address);
  setTimestamp(r.registered_at_ns, *out.mutable_registered_at());
  out.set_create_revision(r.revision);
  out.set_cluster(names(r.cluster));
  auto& h = *out.mutable_health();
  h.set_status(r.health().status == registry::HealthStatus::Alive          ? v1::ALIVE
               : r.health().status == registry::HealthStatus::Unresponsive ? v1::UNRESPONSIVE
                                                                           : v1::HEALTH_UNKNOWN);
  // Unknown since the registration until the first probe.
  setTimestamp(r.health().since_ns != 0 ? r.health().since_ns : r.registered_at_ns,
               *h.mutable_since());
  if (r.health().last_probe_ns != 0) {
    setTimestamp(r.health().last_probe_ns, *h.mutable_last_probe());
  }
  h.set_consecutive_failures(r.health().consecutive_failures);
  // The error of the last failed probe, while it still explains the status: an ALIVE node
  // showing an old timeout reads as a node that is timing out now.
  if (r.health().status != registry::HealthStatus::Alive) {
    h.set_last_error(r.health().last_error);
  }
  auto& holder = *out.mutable_holder();
  if (r.holder) {
    using S = registry::HolderFact::Status;
    switch (r.holder->status) {
      case S::Found:
        holder.set_status(v1::FOUND);
        break;
      case S::NotOnHost:
        holder.set_status(v1::NOT_ON_HOST);
        break;
      case S::NotVisible:
        holder.set_status(v1::NOT_VISIBLE);
        break;
      case S::PermissionDenied:
        holder.set_status(v1::PERMISSION_DENIED);
        break;
      case S::Error:
        holder.set_status(v1::HOLDER_ERROR);
        break;
    }
    holder.set_reason(r.holder->reason);
    for (const auto& p : r.holder->processes) {
      auto* hp = holder.add_processes();
      hp->set_pid(static_cast<uint32_t>(p.pid));
      hp->set_uid(p.uid);
      hp->set_user(p.user);
      hp->set_command(p.command);
      hp->set_command_line(p.command_line);
      hp->set_state(p.state);
    }
    // checked_at is the old name of changed_at (the same value; see the .proto).
    setTimestamp(r.holder->checked_ns, *holder.mutable_changed_at());
    *holder.mutable_checked_at() = holder.changed_at();
  }
  if (r.relayed) {
    // A source's node: its host is the source's word; the source and staleness the relay's.
    out.set_host(r.relayed->host);
    out.set_source(names.source(r.cluster));
    out.set_stale(names.stale(r.cluster));
  } else {
    out.set_host(nodeHost(r, daemonHostNames()));
  }
  if (auto helper = releaseHelper(n.name)) {
    out.mutable_release_helper()->set_command(helper->command);
    out.mutable_release_helper()->set_target(helper->target);
  }
}

void toProto(const ClusterNames& names, const registry::Hold& h, v1::Hold& out) {
  out.set_name(h.name);
  out.set_cluster(names(h.cluster));
  setTimestamp(h.created_at_ns, *out.mutable_created_at());
  setTimestamp(h.expires_at_ns, *out.mutable_expires_at());
  out.set_actor(h.actor);
  out.set_reason(h.reason);
  out.set_source(names.source(h.cluster));
  out.set_registration_id(h.registration ? h.registration->id : 0);
  out.set_revision(h.revision);
}

v1::UnregisterReason toProto(registry::UnregisterReason reason) {
  using R = registry::UnregisterReason;
  switch (reason) {
    case R::ConnectionClosed:
      return v1::CONNECTION_CLOSED;
    case R::Stopped:
      return v1::STOPPED;
    case R::Killed:
      return v1::KILLED;
    case R::Evicted:
      return v1::EVICTED;
    case R::Shutdown:
      return v1::SHUTDOWN;
    case R::TakenOver:
      return v1::TAKEN_OVER;
    case R::AutoEvicted:
      return v1::AUTO_EVICTED;
    case R::SourceGone:
      return v1::SOURCE_GONE;
    case R::SourceResynced:
      return v1::SOURCE_RESYNCED;
    case R::Unspecified:
      break;
  }
  return v1::UNREGISTER_REASON_UNSPECIFIED;
}

void toProto(const ClusterNames& names, const registry::Event& e, v1::NodeEvent& out) {
  using T = registry::EventType;
  switch (e.type) {
    case T::Registered:
      out.set_type(v1::NodeEvent::REGISTERED);
      break;
    case T::Unregistered:
      out.set_type(v1::NodeEvent::UNREGISTERED);
      out.set_reason(toProto(e.reason));
      break;
    case T::Held:
      out.set_type(v1::NodeEvent::HELD);
      break;
    case T::HoldLifted:
      out.set_type(v1::NodeEvent::HOLD_LIFTED);
      break;
    case T::HoldExpired:
      out.set_type(v1::NodeEvent::HOLD_EXPIRED);
      break;
    case T::HealthChanged:
      out.set_type(v1::NodeEvent::HEALTH_CHANGED);
      break;
    case T::HolderChanged:
      out.set_type(v1::NodeEvent::HOLDER_CHANGED);
      break;
  }
  out.set_revision(e.revision);
  toProto(names, *e.registration, *out.mutable_node());
  if (e.hold) {
    toProto(names, *e.hold, *out.mutable_hold());
  }
  out.set_actor(std::string(e.actor()));
  out.set_detail(std::string(e.detail()));
  setTimestamp(e.time_ns, *out.mutable_time());
}

}  // namespace epmdx::api
