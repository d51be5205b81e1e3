#include "server/registry/registry.h"

#include <algorithm>
#include <cassert>

#include "server/common/utf8.h"

namespace epmdx::registry {

std::string_view toString(UnregisterReason reason) {
  switch (reason) {
    case UnregisterReason::Unspecified:
      return "unspecified";
    case UnregisterReason::ConnectionClosed:
      return "connection_closed";
    case UnregisterReason::Stopped:
      return "stopped";
    case UnregisterReason::Killed:
      return "killed";
    case UnregisterReason::Evicted:
      return "evicted";
    case UnregisterReason::Shutdown:
      return "shutdown";
    case UnregisterReason::TakenOver:
      return "taken_over";
    case UnregisterReason::AutoEvicted:
      return "auto_evicted";
  }
  return "unspecified";
}

std::string_view toString(HealthStatus status) {
  switch (status) {
    case HealthStatus::Unknown:
      return "unknown";
    case HealthStatus::Alive:
      return "alive";
    case HealthStatus::Unresponsive:
      return "unresponsive";
  }
  return "unknown";
}

std::string_view toString(EventType type) {
  switch (type) {
    case EventType::Registered:
      return "registered";
    case EventType::Unregistered:
      return "unregistered";
    case EventType::Held:
      return "held";
    case EventType::HoldLifted:
      return "hold_lifted";
    case EventType::HoldExpired:
      return "hold_expired";
    case EventType::HealthChanged:
      return "health_changed";
    case EventType::HolderChanged:
      return "holder_changed";
  }
  return "unknown";
}

std::string_view toString(RegisterError e) {
  switch (e) {
    case RegisterError::NameTooLong:
      return "name_too_long";
    case RegisterError::InvalidNameEncoding:
      return "invalid_name_encoding";
    case RegisterError::ExtraTooLong:
      return "extra_too_long";
    case RegisterError::NameInUse:
      return "name_in_use";
    case RegisterError::TooManyNodes:
      return "too_many_nodes";
    case RegisterError::NameHeld:
      return "name_held";
  }
  return "unknown";
}

// ---- Watch -------------------------------------------------------------------------------

Watch::~Watch() {
  if (token_ != 0) {
    registry_.hub_.remove(token_);
  }
}

bool Watch::fellBehind() const {
  return next_.load() < registry_.oldest_retained_.load(std::memory_order_relaxed);
}

Result<size_t, WatchRejection> Watch::poll(size_t max, std::vector<Event>& out) {
  std::lock_guard<std::mutex> lock(registry_.mu_);
  Revision cursor = next_.load();
  auto r = registry_.readLocked(cursor, max, out);
  next_.store(cursor);
  return r;
}

// ---- Registry ----------------------------------------------------------------------------

Registry::Registry(RegistryOptions options)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? *options_.clock : system_clock_),
      creations_(std::max<size_t>(options_.cluster_names.size(), 1),
                 CreationPool(options_.max_unreg_records)),
      history_(options_.history_size),
      revision_(options_.initial_revision),
      hub_(options_.async_notify) {
  counters_.nodes_by_cluster.assign(creations_.size(), 0);
  counters_.registrations_by_cluster.assign(creations_.size(), 0);
}

const std::string& Registry::clusterName(ClusterId cluster) const {
  static const std::string kDefault = "default";
  return cluster < options_.cluster_names.size() ? options_.cluster_names[cluster] : kDefault;
}

std::optional<ClusterId> Registry::findCluster(std::string_view name) const {
  for (size_t i = 0; i < options_.cluster_names.size(); ++i) {
    if (options_.cluster_names[i] == name) {
      return static_cast<ClusterId>(i);
    }
  }
  return std::nullopt;
}

ClusterId Registry::checkCluster(ClusterId cluster) const {
  assert(cluster < creations_.size());
  return cluster < creations_.size() ? cluster : kDefaultCluster;
}

Registry::~Registry() = default;

namespace {

// The checks that need no lock, in OTP's order (node_reg2).
std::optional<RegisterError> validate(const NodeInfo& node) {
  if (node.name.size() > kMaxNameBytes) {
    return RegisterError::NameTooLong;
  }
  const auto* bytes = reinterpret_cast<const uint8_t*>(node.name.data());
  const int chars = countUtf8Chars(bytes, node.name.size());
  if (chars > kMaxNameChars) {
    return RegisterError::NameTooLong;
  }
  if (chars < 0 || node.name.find('\0') != std::string::npos) {
    return RegisterError::InvalidNameEncoding;
  }
  if (node.extra.size() > kMaxExtraBytes) {
    return RegisterError::ExtraTooLong;
  }
  return std::nullopt;
}

}  // namespace

Result<RegistrationPtr, RegisterError> Registry::add(NodeInfo node, Origin origin,
                                                     std::weak_ptr<RegistrationOwner> owner,
                                                     ClusterId cluster) {
  cluster = checkCluster(cluster);
  const std::optional<RegisterError> invalid = validate(node);
  RegistrationPtr registration;
  std::shared_ptr<RegistrationOwner> replaced;  // The unresponsive holder a takeover ended.
  {
    std::lock_guard<std::mutex> lock(mu_);
    const std::optional<RegisterError> error =
        invalid ? invalid : admitLocked(cluster, node, origin, replaced);
    if (error) {
      ++counters_.register_errors[static_cast<size_t>(*error)];
      return makeErr(*error);
    }
    registration = insertLocked(cluster, std::move(node), std::move(origin), std::move(owner));
  }
  if (replaced) {
    replaced->closeRegistration();
  }
  hub_.notify();
  return registration;
}

std::optional<RegisterError> Registry::admitLocked(ClusterId cluster, const NodeInfo& node,
                                                   const Origin& origin,
                                                   std::shared_ptr<RegistrationOwner>& replaced) {
  if (auto it = by_name_.find(Key{cluster, node.name}); it != by_name_.end()) {
    const Registration& old = *it->second.registration;
    if (!options_.takeover_unresponsive || old.health().status != HealthStatus::Unresponsive) {
      return RegisterError::NameInUse;
    }
    replaced = takeOverLocked(old, origin);
  }
  if (heldLocked(cluster, node.name)) {
    return RegisterError::NameHeld;
  }
  if (by_name_.size() >= options_.max_nodes) {
    return RegisterError::TooManyNodes;
  }
  return std::nullopt;
}

std::shared_ptr<RegistrationOwner> Registry::takeOverLocked(const Registration& old,
                                                            const Origin& origin) {
  // The name's holder does not answer its probes: the newcomer (typically its replacement,
  // started by a supervisor) takes the name; the old VM, if it ever wakes, finds its epmd
  // connection closed and the name taken.
  std::string detail = "unresponsive for " +
                       std::to_string((clock_.nowNanos() - old.health().since_ns) / 1000000) +
                       " ms (" + old.health().last_error + "); replaced by a registration from " +
                       origin.peer_address;
  // A copy of the name: eraseLocked frees `old`.
  const std::string name = old.node.name;
  return eraseLocked(old.cluster, name, UnregisterReason::TakenOver, "takeover", std::move(detail));
}

bool Registry::heldLocked(ClusterId cluster, const std::string& name) {
  if (holds_.empty()) {
    return false;
  }
  auto it = holds_.find({cluster, name});
  if (it == holds_.end()) {
    return false;
  }
  if (it->second->expires_at_ns > clock_.nowNanos()) {
    return true;
  }
  // Its time came before the expiry sweep noticed: end it first, so the history reads
  // HOLD_EXPIRED, then REGISTERED.
  endHoldLocked(it, EventType::HoldExpired, {}, {});
  return false;
}

RegistrationPtr Registry::insertLocked(ClusterId cluster, NodeInfo node, Origin origin,
                                       std::weak_ptr<RegistrationOwner> owner) {
  auto reg = std::make_shared<Registration>();
  reg->creation_counter = creations_[cluster].take(node.name, clock_.nowSeconds());
  reg->cluster = cluster;
  reg->node = std::move(node);
  reg->origin = std::move(origin);
  reg->id = next_id_++;
  reg->registered_at_ns = clock_.nowNanos();
  reg->revision = revision_ + 1;

  Entry& entry = by_name_[Key{cluster, reg->node.name}];
  entry.registration = reg;
  entry.owner = std::move(owner);
  entry.older = newest_;
  (newest_ != nullptr ? newest_->newer : oldest_) = &entry;
  newest_ = &entry;
  ++counters_.registrations;
  ++counters_.registrations_by_cluster[cluster];
  ++counters_.nodes_by_cluster[cluster];
  ++counters_.nodes_by_health[static_cast<size_t>(HealthStatus::Unknown)];
  appendLocked(EventType::Registered, UnregisterReason::Unspecified, reg, {}, {});
  return reg;
}

bool Registry::remove(const Registration& registration, UnregisterReason reason) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_name_.find(Key{registration.cluster, registration.node.name});
    if (it == by_name_.end() || it->second.registration->id != registration.id) {
      return false;
    }
    eraseLocked(registration.cluster, registration.node.name, reason, {}, {});
  }
  hub_.notify();
  return true;
}

Result<Evicted, EvictError> Registry::evict(EvictRequest request) {
  const ClusterId cluster = checkCluster(request.cluster);
  Evicted removed;
  std::shared_ptr<RegistrationOwner> owner;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_name_.find(Key{cluster, request.name});
    if (it == by_name_.end()) {
      return makeErr(EvictError::NotFound);
    }
    if (request.expected_id && it->second.registration->id != *request.expected_id) {
      return makeErr(EvictError::PreconditionFailed);
    }
    removed.registration = it->second.registration;
    const std::string hold_actor = request.hold_for ? request.actor : std::string();
    const std::string hold_reason = request.hold_for ? request.detail : std::string();
    owner = eraseLocked(cluster, request.name, request.reason, std::move(request.actor),
                        std::move(request.detail));
    removed.revision = revision_;
    if (request.hold_for) {
      removed.hold =
          placeHoldLocked(removed.registration, *request.hold_for, hold_actor, hold_reason);
    }
  }
  if (owner) {
    owner->closeRegistration();
  }
  hub_.notify();
  return removed;
}

HoldPtr Registry::placeHoldLocked(const RegistrationPtr& registration,
                                  std::chrono::nanoseconds hold_for, std::string actor,
                                  std::string reason) {
  auto hold = std::make_shared<Hold>();
  hold->name = registration->node.name;
  hold->cluster = registration->cluster;
  hold->created_at_ns = clock_.nowNanos();
  hold->expires_at_ns = hold->created_at_ns + hold_for.count();
  hold->actor = std::move(actor);
  hold->reason = std::move(reason);
  hold->registration = registration;
  hold->revision = revision_ + 1;
  // A hold placed over an older one replaces it: one reservation per name.
  holds_[{hold->cluster, hold->name}] = hold;
  ++counters_.holds_placed;
  appendLocked(EventType::Held, UnregisterReason::Unspecified, registration, hold->actor,
               hold->reason, hold);
  return hold;
}

std::optional<Revision> Registry::recordProbe(ClusterId cluster, std::string_view name,
                                              RegistrationId id, bool alive, std::string error) {
  cluster = checkCluster(cluster);
  std::optional<Revision> changed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_name_.find(Key{cluster, name});
    if (it == by_name_.end() || it->second.registration->id != id) {
      return std::nullopt;  // Gone (or replaced) while the probe ran.
    }
    Entry& entry = it->second;
    // Registrations are immutable: publish a copy with the new health. Probes come every few
    // seconds per node, so this is a few hundred small copies a second at 1,000 nodes.
    auto copy = std::make_shared<Registration>(*entry.registration);
    auto health = std::make_shared<Health>(copy->health());
    Health& h = *health;
    const HealthStatus before = h.status;
    const int64_t now = clock_.nowNanos();
    h.last_probe_ns = now;
    if (alive) {
      h.status = HealthStatus::Alive;
      h.consecutive_failures = 0;
    } else {
      h.status = HealthStatus::Unresponsive;
      ++h.consecutive_failures;
      h.last_error = std::move(error);
    }
    if (h.status != before) {
      h.since_ns = now;
    }
    copy->health_facts = std::move(health);
    const bool changed_status = h.status != before;
    const HealthStatus after = h.status;
    replaceLocked(it, copy);
    if (changed_status) {
      --counters_.nodes_by_health[static_cast<size_t>(before)];
      ++counters_.nodes_by_health[static_cast<size_t>(after)];
      ++counters_.health_changes[static_cast<size_t>(after)];
      changed = appendLocked(EventType::HealthChanged, UnregisterReason::Unspecified,
                             std::move(copy), {}, {});
    }
  }
  if (changed) {
    hub_.notify();
  }
  return changed;
}

std::optional<Revision> Registry::recordHolder(ClusterId cluster, std::string_view name,
                                               RegistrationId id,
                                               std::shared_ptr<const HolderFact> holder) {
  cluster = checkCluster(cluster);
  std::optional<Revision> changed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_name_.find(Key{cluster, name});
    if (it == by_name_.end() || it->second.registration->id != id) {
      return std::nullopt;  // Gone (or replaced) while the lookup ran.
    }
    const auto& old = it->second.registration->holder;
    if (old && holder && old->sameAs(*holder)) {
      return std::nullopt;  // Unchanged: keep the published registration (and its check time).
    }
    // Every look refreshes every registration, so only a new identity is worth an event:
    // a process going from running to sleeping is a fact, not news.
    const bool new_identity = !old || !holder || !old->sameHolder(*holder);
    auto copy = std::make_shared<Registration>(*it->second.registration);
    copy->holder = std::move(holder);
    RegistrationPtr published = copy;
    replaceLocked(it, std::move(copy));
    if (new_identity) {
      ++counters_.holder_changes;
      changed = appendLocked(EventType::HolderChanged, UnregisterReason::Unspecified,
                             std::move(published), {}, {});
    }
  }
  if (changed) {
    hub_.notify();
  }
  return changed;
}

template <class It>
void Registry::replaceLocked(It it, RegistrationPtr copy) {
  auto node = by_name_.extract(it);
  node.key() = Key{copy->cluster, copy->node.name};
  node.mapped().registration = std::move(copy);  // The old one (and its name) may go now.
  by_name_.insert(std::move(node));
}

size_t Registry::removeAll(UnregisterReason reason, std::optional<ClusterId> only) {
  std::vector<std::shared_ptr<RegistrationOwner>> owners;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Oldest first, so the history reads in registration order.
    for (Entry* e = oldest_; e != nullptr;) {
      const RegistrationPtr keep = e->registration;  // eraseLocked frees the entry.
      e = e->newer;
      if (only && keep->cluster != *only) {
        continue;
      }
      if (auto owner = eraseLocked(keep->cluster, keep->node.name, reason, {}, {})) {
        owners.push_back(std::move(owner));
      }
    }
  }
  for (auto& owner : owners) {
    owner->closeRegistration();
  }
  hub_.notify();
  return owners.size();
}

RegistrationPtr Registry::find(std::string_view name, ClusterId cluster) const {
  cluster = checkCluster(cluster);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_name_.find(Key{cluster, name});
  return it == by_name_.end() ? nullptr : it->second.registration;
}

Registry::Snapshot Registry::list(std::optional<ClusterId> only) const {
  std::lock_guard<std::mutex> lock(mu_);
  return listLocked(only);
}

std::vector<CreationPool::Record> Registry::unusedNames(ClusterId cluster) const {
  cluster = checkCluster(cluster);
  std::lock_guard<std::mutex> lock(mu_);
  return creations_[cluster].records();
}

Result<WatchPtr, WatchRejection> Registry::watch(Revision start, WatchHub::WakeFn wake) {
  WatchPtr w;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const Revision oldest = history_.oldestRetained(revision_);
    if (start == 0) {
      start = revision_ + 1;
    }
    if (start > revision_ + 1) {
      return makeErr(WatchRejection{WatchRejection::Code::FutureRevision, oldest, revision_});
    }
    if (start < oldest) {
      return makeErr(WatchRejection{WatchRejection::Code::Compacted, oldest, revision_});
    }
    w.reset(new Watch(*this, start));
  }
  // Subscribing after the lock is fine: the cursor already pins the start, and a change
  // that lands before add() is read on the first poll.
  if (wake) {
    w->token_ = hub_.add(std::move(wake));
  }
  return w;
}

std::pair<Registry::Snapshot, WatchPtr> Registry::listAndWatch(WatchHub::WakeFn wake) {
  Snapshot snapshot;
  WatchPtr w;
  {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot = listLocked(std::nullopt);
    w.reset(new Watch(*this, snapshot.revision + 1));
  }
  if (wake) {
    w->token_ = hub_.add(std::move(wake));
  }
  return {std::move(snapshot), std::move(w)};
}

Revision Registry::revision() const {
  std::lock_guard<std::mutex> lock(mu_);
  return revision_;
}

size_t Registry::size(std::optional<ClusterId> only) const {
  std::lock_guard<std::mutex> lock(mu_);
  return only ? counters_.nodes_by_cluster[checkCluster(*only)] : by_name_.size();
}

RegistryStats Registry::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  RegistryStats s = counters_;
  s.nodes = by_name_.size();
  s.watchers = hub_.size();
  s.holds = holds_.size();
  s.revision = revision_;
  s.oldest_retained = history_.oldestRetained(revision_);
  return s;
}

Revision Registry::appendLocked(EventType type, UnregisterReason reason,
                                RegistrationPtr registration, std::string actor, std::string detail,
                                HoldPtr hold) {
  Event e;
  e.revision = ++revision_;
  e.type = type;
  e.reason = reason;
  e.registration = std::move(registration);
  e.time_ns = clock_.nowNanos();
  if (!actor.empty() || !detail.empty()) {
    e.note = std::make_shared<EventNote>(EventNote{std::move(actor), std::move(detail)});
  }
  e.hold = std::move(hold);
  history_.append(std::move(e));
  oldest_retained_.store(history_.oldestRetained(revision_), std::memory_order_relaxed);
  return revision_;
}

std::shared_ptr<RegistrationOwner> Registry::eraseLocked(ClusterId cluster, std::string_view name,
                                                         UnregisterReason reason, std::string actor,
                                                         std::string detail) {
  auto it = by_name_.find(Key{cluster, name});
  assert(it != by_name_.end());
  Entry& entry = it->second;
  (entry.newer != nullptr ? entry.newer->older : newest_) = entry.older;
  (entry.older != nullptr ? entry.older->newer : oldest_) = entry.newer;
  RegistrationPtr registration = std::move(entry.registration);
  std::shared_ptr<RegistrationOwner> owner = entry.owner.lock();
  by_name_.erase(it);  // `name` may view the registration's name: it is still alive here.
  const Registration& r = *registration;
  creations_[cluster].put(r.node.name, r.creation_counter, r.node.port, r.origin.connection_handle);
  --counters_.nodes_by_cluster[cluster];
  --counters_.nodes_by_health[static_cast<size_t>(r.health().status)];
  ++counters_.unregistrations[static_cast<size_t>(reason)];
  appendLocked(EventType::Unregistered, reason, std::move(registration), std::move(actor),
               std::move(detail));
  return owner;
}

EndedHold Registry::endHoldLocked(std::map<std::pair<ClusterId, std::string>, HoldPtr>::iterator it,
                                  EventType type, std::string actor, std::string detail) {
  EndedHold ended;
  ended.hold = std::move(it->second);
  holds_.erase(it);
  ++(type == EventType::HoldLifted ? counters_.holds_lifted : counters_.holds_expired);
  ended.revision = appendLocked(type, UnregisterReason::Unspecified, ended.hold->registration,
                                std::move(actor), std::move(detail), ended.hold);
  return ended;
}

Result<EndedHold, HoldError> Registry::liftHold(std::string_view name, ClusterId cluster,
                                                std::string actor, std::string detail) {
  cluster = checkCluster(cluster);
  EndedHold ended;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = holds_.find({cluster, std::string(name)});
    if (it == holds_.end()) {
      return makeErr(HoldError::NotFound);
    }
    ended = endHoldLocked(it, EventType::HoldLifted, std::move(actor), std::move(detail));
  }
  hub_.notify();
  return ended;
}

std::vector<EndedHold> Registry::expireHolds() {
  std::vector<EndedHold> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (holds_.empty()) {
      return out;
    }
    const int64_t now = clock_.nowNanos();
    for (auto it = holds_.begin(); it != holds_.end();) {
      auto next = std::next(it);
      if (it->second->expires_at_ns <= now) {
        out.push_back(endHoldLocked(it, EventType::HoldExpired, {}, {}));
      }
      it = next;
    }
  }
  if (!out.empty()) {
    hub_.notify();
  }
  return out;
}

std::optional<int64_t> Registry::nextHoldExpiry() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::optional<int64_t> next;
  for (const auto& [key, hold] : holds_) {
    if (!next || hold->expires_at_ns < *next) {
      next = hold->expires_at_ns;
    }
  }
  return next;
}

Registry::EventSnapshot Registry::recentEvents(size_t max, std::optional<ClusterId> only) const {
  EventSnapshot s;
  s.events.reserve(std::min(max, options_.history_size));
  std::lock_guard<std::mutex> lock(mu_);
  s.revision = revision_;
  s.oldest_retained = history_.oldestRetained(revision_);
  history_.readLast(max, only, s.events);
  return s;
}

Registry::EventSnapshot Registry::eventsAfter(size_t max, Revision after,
                                              std::optional<ClusterId> only) const {
  EventSnapshot s;
  s.events.reserve(std::min(max, options_.history_size));
  std::lock_guard<std::mutex> lock(mu_);
  s.revision = revision_;
  s.oldest_retained = history_.oldestRetained(revision_);
  history_.readAfter(max, after, only, s.events);
  return s;
}

Registry::HoldSnapshot Registry::holds(std::optional<ClusterId> only) const {
  HoldSnapshot s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    s.revision = revision_;
    for (const auto& [key, hold] : holds_) {
      if (!only || key.first == *only) {
        s.holds.push_back(hold);
      }
    }
  }
  std::sort(s.holds.begin(), s.holds.end(), [](const HoldPtr& a, const HoldPtr& b) {
    return a.get()->expires_at_ns < b.get()->expires_at_ns;
  });
  return s;
}

Result<size_t, WatchRejection> Registry::readLocked(Revision& cursor, size_t max,
                                                    std::vector<Event>& out) const {
  const size_t before = out.size();
  if (history_.readFrom(cursor, max, out) == History::Read::Compacted) {
    return makeErr(WatchRejection{WatchRejection::Code::Compacted,
                                  history_.oldestRetained(revision_), revision_});
  }
  cursor += out.size() - before;
  return out.size() - before;
}

Registry::Snapshot Registry::listLocked(std::optional<ClusterId> only) const {
  Snapshot s;
  s.revision = revision_;
  s.nodes.reserve(only ? counters_.nodes_by_cluster[checkCluster(*only)] : by_name_.size());
  for (const Entry* e = newest_; e != nullptr; e = e->older) {
    if (!only || e->registration->cluster == *only) {
      s.nodes.push_back(e->registration);
    }
  }
  return s;
}

}  // namespace epmdx::registry
