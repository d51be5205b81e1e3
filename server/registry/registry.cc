// The name table (add, remove, evict, list), the history it appends to and the watches that
// read it. Holds, probe/holder facts and enum strings live in holds.cc, node_facts.cc and
// enum_strings.cc (one class, one job per file).

#include "server/registry/registry.h"

#include <algorithm>
#include <cassert>

#include "server/common/utf8.h"

namespace epmdx::registry {

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
      clusters_(std::make_shared<ClusterTable>(options_.cluster_names, options_.max_clusters)),
      creations_(clusters_->size(), CreationPool(options_.max_unreg_records)),
      history_(options_.history_size),
      revision_(options_.initial_revision),
      hub_(options_.async_notify) {
  counters_.nodes_by_cluster.assign(creations_.size(), 0);
  counters_.registrations_by_cluster.assign(creations_.size(), 0);
}

const std::string& Registry::clusterName(ClusterId cluster) const {
  return clusters_->name(cluster);
}

std::optional<ClusterId> Registry::findCluster(std::string_view name) const {
  return clusters_->find(name);
}

std::optional<ClusterId> Registry::addCluster(std::string_view name, std::string_view source) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto id = clusters_->add(name, source);
  // The per-cluster state grows with the table, under the lock that guards it.
  while (id && creations_.size() < clusters_->size()) {
    creations_.emplace_back(options_.max_unreg_records);
    counters_.nodes_by_cluster.push_back(0);
    counters_.registrations_by_cluster.push_back(0);
  }
  return id;
}

ClusterId Registry::checkCluster(ClusterId cluster) const {
  assert(cluster < clusters_->size());
  return cluster < clusters_->size() ? cluster : kDefaultCluster;
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
  if (removed.hold) {
    std::lock_guard<std::mutex> lock(hold_listener_mu_);
    if (hold_placed_) {
      hold_placed_(removed.hold->expires_at_ns);
    }
  }
  return removed;
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

Registry::Snapshot Registry::list(const ClusterFilter& only) const {
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
  if (!r.relayed) {  // A relay's clusters hand out no creations: nothing to remember.
    creations_[cluster].put(r.node.name, r.creation_counter, r.node.port,
                            r.origin.connection_handle);
  }
  --counters_.nodes_by_cluster[cluster];
  --counters_.nodes_by_health[static_cast<size_t>(r.health().status)];
  ++counters_.unregistrations[static_cast<size_t>(reason)];
  appendLocked(EventType::Unregistered, reason, std::move(registration), std::move(actor),
               std::move(detail));
  return owner;
}

Registry::EventSnapshot Registry::recentEvents(size_t max, const ClusterFilter& only) const {
  EventSnapshot s;
  s.events.reserve(std::min(max, options_.history_size));
  std::lock_guard<std::mutex> lock(mu_);
  s.revision = revision_;
  s.oldest_retained = history_.oldestRetained(revision_);
  history_.readLast(max, only, s.events);
  return s;
}

Registry::EventSnapshot Registry::eventsAfter(size_t max, Revision after,
                                              const ClusterFilter& only) const {
  EventSnapshot s;
  s.events.reserve(std::min(max, options_.history_size));
  std::lock_guard<std::mutex> lock(mu_);
  s.revision = revision_;
  s.oldest_retained = history_.oldestRetained(revision_);
  history_.readAfter(max, after, only, s.events);
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

Registry::Snapshot Registry::listLocked(const ClusterFilter& only) const {
  Snapshot s;
  s.revision = revision_;
  s.nodes.reserve(only.one() ? counters_.nodes_by_cluster[checkCluster(*only.one())]
                             : by_name_.size());
  for (const Entry* e = newest_; e != nullptr; e = e->older) {
    if (only.matches(e->registration->cluster)) {
      s.nodes.push_back(e->registration);
    }
  }
  return s;
}

}  // namespace epmdx::registry
