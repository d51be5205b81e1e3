#include "server/fleet/relay_convert.h"

namespace epmdx::fleet {
namespace {

int64_t nanos(const google::protobuf::Timestamp& ts) {
  return ts.seconds() * 1000000000 + ts.nanos();
}

std::shared_ptr<const registry::Health> healthOf(const v1::NodeHealth& h) {
  if (h.status() == v1::HEALTH_UNKNOWN && h.consecutive_failures() == 0 && !h.has_last_probe()) {
    return nullptr;  // Never probed: the registration's default, no allocation.
  }
  auto out = std::make_shared<registry::Health>();
  out->status = h.status() == v1::ALIVE          ? registry::HealthStatus::Alive
                : h.status() == v1::UNRESPONSIVE ? registry::HealthStatus::Unresponsive
                                                 : registry::HealthStatus::Unknown;
  out->since_ns = nanos(h.since());
  out->last_probe_ns = h.has_last_probe() ? nanos(h.last_probe()) : 0;
  out->consecutive_failures = h.consecutive_failures();
  out->last_error = h.last_error();
  return out;
}

std::shared_ptr<const registry::HolderFact> holderOf(const v1::Holder& h, const std::string& host) {
  using S = registry::HolderFact::Status;
  if (h.status() == v1::HOLDER_UNKNOWN) {
    return nullptr;
  }
  auto out = std::make_shared<registry::HolderFact>();
  switch (h.status()) {
    case v1::FOUND:
      out->status = S::Found;
      break;
    case v1::NOT_ON_HOST:
      out->status = S::NotOnHost;
      break;
    case v1::NOT_VISIBLE:
      out->status = S::NotVisible;
      break;
    case v1::PERMISSION_DENIED:
      out->status = S::PermissionDenied;
      break;
    default:
      out->status = S::Error;
      break;
  }
  out->reason = h.reason();
  for (const auto& p : h.processes()) {
    out->processes.push_back({static_cast<int32_t>(p.pid()), p.uid(), p.user(), p.command(),
                              p.command_line(), p.state()});
  }
  out->checked_ns = nanos(h.changed_at());
  out->node_host = host;
  return out;
}

}  // namespace

registry::UnregisterReason fromProto(v1::UnregisterReason reason) {
  using R = registry::UnregisterReason;
  switch (reason) {
    case v1::CONNECTION_CLOSED:
      return R::ConnectionClosed;
    case v1::STOPPED:
      return R::Stopped;
    case v1::KILLED:
      return R::Killed;
    case v1::EVICTED:
      return R::Evicted;
    case v1::SHUTDOWN:
      return R::Shutdown;
    case v1::TAKEN_OVER:
      return R::TakenOver;
    case v1::AUTO_EVICTED:
      return R::AutoEvicted;
    case v1::SOURCE_GONE:
      return R::SourceGone;
    case v1::SOURCE_RESYNCED:
      return R::SourceResynced;
    default:
      return R::Unspecified;
  }
}

registry::RegistrationPtr fromProto(const v1::Node& n, registry::ClusterId cluster) {
  auto r = std::make_shared<registry::Registration>();
  r->node.name = n.name();
  r->node.port = static_cast<uint16_t>(n.port());
  r->node.node_type = static_cast<uint8_t>(n.node_type_raw());
  r->node.protocol = static_cast<uint8_t>(n.protocol());
  r->node.highest_version = static_cast<uint16_t>(n.highest_version());
  r->node.lowest_version = static_cast<uint16_t>(n.lowest_version());
  r->node.extra = n.extra();
  r->origin.peer_address = n.peer_address();
  r->id = n.registration_id();
  r->cluster = cluster;
  r->registered_at_ns = nanos(n.registered_at());
  r->health_facts = healthOf(n.health());
  r->holder = holderOf(n.holder(), n.host());
  auto relayed = std::make_shared<registry::Relayed>();
  relayed->host = n.host();
  relayed->creation = n.creation();
  relayed->source_revision = n.create_revision();
  r->relayed = std::move(relayed);
  return r;
}

registry::Event fromProto(const v1::NodeEvent& e, registry::ClusterId cluster) {
  using T = registry::EventType;
  registry::Event out;
  switch (e.type()) {
    case v1::NodeEvent::UNREGISTERED:
      out.type = T::Unregistered;
      break;
    case v1::NodeEvent::HELD:
      out.type = T::Held;
      break;
    case v1::NodeEvent::HOLD_LIFTED:
      out.type = T::HoldLifted;
      break;
    case v1::NodeEvent::HOLD_EXPIRED:
      out.type = T::HoldExpired;
      break;
    case v1::NodeEvent::HEALTH_CHANGED:
      out.type = T::HealthChanged;
      break;
    case v1::NodeEvent::HOLDER_CHANGED:
      out.type = T::HolderChanged;
      break;
    default:
      out.type = T::Registered;
      break;
  }
  out.reason = fromProto(e.reason());
  out.registration = fromProto(e.node(), cluster);
  out.time_ns = nanos(e.time());
  if (!e.actor().empty() || !e.detail().empty()) {
    out.note = std::make_shared<registry::EventNote>(registry::EventNote{e.actor(), e.detail()});
  }
  if (e.has_hold()) {
    auto h = std::make_shared<registry::Hold>();
    h->name = e.hold().name();
    h->cluster = cluster;
    h->created_at_ns = nanos(e.hold().created_at());
    h->expires_at_ns = nanos(e.hold().expires_at());
    h->actor = e.hold().actor();
    h->reason = e.hold().reason();
    h->registration = out.registration;
    out.hold = std::move(h);
  }
  return out;
}

}  // namespace epmdx::fleet
