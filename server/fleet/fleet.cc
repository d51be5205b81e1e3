#include "server/fleet/fleet.h"

#include <algorithm>
#include <deque>

#include <google/protobuf/util/time_util.h>

#include "server/api/convert.h"
#include "server/common/log.h"
#include "server/fleet/relay_convert.h"
#include "server/fleet/sources_file.h"

namespace epmdx::fleet {
namespace {

int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string_view stateName(v1::SourceState s) {
  switch (s) {
    case v1::LIVE:
      return "LIVE";
    case v1::STALE:
      return "STALE";
    case v1::UNAVAILABLE:
      return "UNAVAILABLE";
    case v1::GONE:
      return "GONE";
    default:
      return "UNSPECIFIED";
  }
}

std::string timeText(int64_t ns) {
  google::protobuf::Timestamp ts;
  api::setTimestamp(ns, ts);
  return google::protobuf::util::TimeUtil::ToString(ts);
}

/// The same facts a watcher would be told of (health, holder), the registration aside.
bool sameFacts(const registry::Registration& a, const registry::Registration& b) {
  const auto& ha = a.health();
  const auto& hb = b.health();
  if (ha.status != hb.status || ha.consecutive_failures != hb.consecutive_failures ||
      ha.last_error != hb.last_error) {
    return false;
  }
  if (static_cast<bool>(a.holder) != static_cast<bool>(b.holder)) {
    return false;
  }
  return !a.holder || a.holder->sameAs(*b.holder);
}

}  // namespace

// One source as the relay knows it: by the name it gives itself.
struct Fleet::Record {
  std::string name;
  std::string address;              // Where it is followed now.
  std::set<std::string> addresses;  // Every address that said it is this source.
  v1::SourceState state = v1::UNAVAILABLE;
  int64_t since_ns = 0;
  std::string last_error;
  uint64_t revision = 0;
  uint64_t boot_epoch = 0;
  std::string discovered_by;
  std::map<std::string, registry::ClusterId> scopes;  // Its cluster name -> the relay's.
  // The relay's cluster name -> (the source's own source, its cluster): what a write
  // forwarded to a source that is a relay names.
  std::map<std::string, std::pair<std::string, std::string>> upstream;
  // The relay's registrations of it, by (relay cluster, name): what a list again diffs.
  std::map<std::pair<registry::ClusterId, std::string>, registry::RegistrationPtr> nodes;
  Follower* feeder = nullptr;  // The follower whose stream writes it; null while none does.
  std::optional<int64_t> gone_since_ns;
  // (source revision, relay revision) of its last changes applied: an eviction or a lift
  // through the relay answers with the relay's revision of the change, not the source's.
  std::deque<std::pair<uint64_t, uint64_t>> relayed_at;
  std::map<registry::ClusterId, v1::Cluster> told;  // Its clusters as ListClusters says.
  uint64_t nodes_epoch = 0;  // The boot epoch of the run `nodes` were listed from.
};

namespace {
constexpr size_t kRelayedAtKept = 1024;
}  // namespace

// One address's stream, and what it said before it named its source.
class Fleet::Follower final : public SourceSink {
 public:
  Follower(Fleet& fleet, std::string address, SourceStreamOptions options)
      : fleet_(fleet), address_(std::move(address)), stream_(withAddress(options), *this) {}

  void onIdentity(const SourceIdentity& id) override { fleet_.identified(*this, id); }
  void onSnapshot(std::vector<v1::Node> nodes, uint64_t revision) override {
    fleet_.snapshot(*this, std::move(nodes), revision);
  }
  void onEvents(std::vector<v1::NodeEvent> events, uint64_t revision) override {
    fleet_.events(*this, std::move(events), revision);
  }
  void onProgress(uint64_t revision) override { fleet_.progress(*this, revision); }
  void onDown(const std::string& error, bool refused) override {
    fleet_.down(*this, error, refused);
  }

  const std::string& address() const { return address_; }
  SourceStream& stream() { return stream_; }

  // Guarded by the fleet's mu_.
  Record* record = nullptr;
  bool alias = false;     // Another address of a source already followed: applies nothing.
  bool detached = false;  // Discovery dropped it: its last words are ignored.
  std::string error = "not reached yet";
  int64_t since_ns = nowNs();

 private:
  SourceStreamOptions withAddress(SourceStreamOptions o) const {
    o.address = address_;
    return o;
  }
  Fleet& fleet_;
  std::string address_;
  SourceStream stream_;
};

Fleet::Fleet(registry::Registry& registry, FleetOptions options)
    : registry_(registry),
      options_(std::move(options)),
      resolver_(options_.dns_server, options_.dns_timeout) {}

Fleet::~Fleet() {
  stop();
}

std::optional<std::string> Fleet::start() {
  if (!options_.sources_file.empty()) {
    auto read = readSourcesFile(options_.sources_file);
    if (!read.ok()) {
      return read.error();
    }
    std::lock_guard<std::mutex> lock(mu_);
    file_sources_ = std::move(read.value());
  }
  reconcile(discover());
  loop_ = std::thread([this] { discoveryLoop(); });
  return std::nullopt;
}

void Fleet::stop() {
  {
    std::lock_guard<std::mutex> lock(loop_mu_);
    stopping_ = true;
  }
  loop_cv_.notify_all();
  if (loop_.joinable()) {
    loop_.join();
  }
  std::map<std::string, std::shared_ptr<Follower>> followers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [address, f] : followers_) {
      f->detached = true;
    }
    followers.swap(followers_);
  }
  for (auto& [address, f] : followers) {
    f->stream().stop();
  }
}

void Fleet::reload(std::optional<std::string> token) {
  if (token) {
    std::lock_guard<std::mutex> lock(mu_);
    options_.stream.token = *token;  // New connections present it.
  }
  if (!options_.sources_file.empty()) {
    auto read = readSourcesFile(options_.sources_file);
    if (!read.ok()) {
      log::error("sources file not reloaded: keeping the sources in force",
                 {{"error", read.error()}});
    } else {
      std::lock_guard<std::mutex> lock(mu_);
      file_sources_ = std::move(read.value());
      log::info("sources file reloaded", {{"sources", file_sources_.size()}});
    }
  }
  {
    std::lock_guard<std::mutex> lock(loop_mu_);
    rediscover_ = true;
  }
  loop_cv_.notify_all();
}

// ---- Discovery ---------------------------------------------------------------------------

std::set<std::string> Fleet::discover() {
  std::set<std::string> wanted;
  std::map<std::string, std::string> by;
  std::vector<std::string> notes;
  for (const auto& a : options_.sources) {
    wanted.insert(a);
    by.emplace(a, "flag");
  }
  std::vector<std::string> from_file;
  {
    std::lock_guard<std::mutex> lock(mu_);
    from_file = file_sources_;
  }
  for (const auto& a : from_file) {
    wanted.insert(a);
    by.emplace(a, "file:" + options_.sources_file);
  }
  for (const auto& q : options_.dns) {
    DnsAnswer answer = resolver_.resolve(q);
    std::vector<std::string> addresses;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto& last = dns_last_[q.text()];
      if (answer.ok) {
        last = answer.addresses;
        notes.push_back("dns " + q.text() + ": " + std::to_string(last.size()) + " addresses at " +
                        timeText(nowNs()));
      } else {
        // A failed lookup is no answer: keep the sources it gave before.
        notes.push_back("dns " + q.text() + ": lookup failed (" + answer.error + ") at " +
                        timeText(nowNs()) + ": keeping " + std::to_string(last.size()));
        log::warn("DNS lookup failed: keeping the sources it found before",
                  {{"query", q.text()}, {"error", answer.error}, {"kept", last.size()}});
      }
      addresses = last;
    }
    for (const auto& a : addresses) {
      wanted.insert(a);
      by.emplace(a, "dns:" + q.text());
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  discovered_by_ = std::move(by);
  discovery_notes_ = std::move(notes);
  return wanted;
}

void Fleet::reconcile(const std::set<std::string>& wanted) {
  std::vector<Follower*> started;
  std::vector<std::shared_ptr<Follower>> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& address : wanted) {
      if (followers_.count(address) == 0) {
        auto f = std::make_shared<Follower>(*this, address, options_.stream);
        started.push_back(f.get());
        followers_.emplace(address, std::move(f));
        log::info("following a source", {{"address", address}});
      }
    }
    for (auto it = followers_.begin(); it != followers_.end();) {
      if (wanted.count(it->first) != 0) {
        ++it;
        continue;
      }
      Follower& f = *it->second;
      f.detached = true;
      if (f.record != nullptr && !f.alias) {
        Record& r = *f.record;
        r.feeder = nullptr;
        r.addresses.erase(f.address());
        r.gone_since_ns = nowNs();
        setStateLocked(r, v1::GONE, "no longer discovered at " + f.address());
        log::warn("source no longer discovered: its nodes stay, stale, for the grace period",
                  {{"source", r.name},
                   {"address", f.address()},
                   {"grace_ms", options_.gone_grace.count()}});
      } else if (f.record != nullptr) {
        f.record->addresses.erase(f.address());
      }
      dropped.push_back(std::move(it->second));
      it = followers_.erase(it);
    }
  }
  for (Follower* f : started) {
    f->stream().start();
  }
  for (auto& f : dropped) {
    f->stream().stop();
  }
}

void Fleet::expireGone() {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = nowNs();
  const int64_t grace =
      std::chrono::duration_cast<std::chrono::nanoseconds>(options_.gone_grace).count();
  for (auto it = records_.begin(); it != records_.end();) {
    Record& r = *it->second;
    if (r.feeder == nullptr && r.gone_since_ns && now - *r.gone_since_ns >= grace) {
      log::info("source gone: its nodes leave", {{"source", r.name}, {"nodes", r.nodes.size()}});
      dropNodesLocked(r, registry::UnregisterReason::SourceGone);
      for (auto& [name, f] : followers_) {
        if (f->record == &r) {
          f->record = nullptr;
        }
      }
      it = records_.erase(it);
      coverage_version_.fetch_add(1);
      registry_.nudge();
    } else {
      ++it;
    }
  }
}

void Fleet::discoveryLoop() {
  auto next_discovery = std::chrono::steady_clock::now() + options_.dns_interval;
  for (;;) {
    bool rediscover = false;
    {
      std::unique_lock<std::mutex> lock(loop_mu_);
      const auto tick = std::min(next_discovery,
                                 std::chrono::steady_clock::now() + std::chrono::milliseconds(250));
      loop_cv_.wait_until(lock, tick, [this] { return stopping_ || rediscover_; });
      if (stopping_) {
        return;
      }
      rediscover = std::exchange(rediscover_, false);
    }
    if (rediscover || std::chrono::steady_clock::now() >= next_discovery) {
      reconcile(discover());
      next_discovery = std::chrono::steady_clock::now() + options_.dns_interval;
    }
    expireGone();
  }
}

// ---- What the streams say ----------------------------------------------------------------

registry::ClusterId Fleet::scopeLocked(Record& r, const std::string& upstream,
                                       const std::string& cluster_name) {
  const std::string cluster = upstream.empty() ? cluster_name : upstream + "/" + cluster_name;
  if (auto it = r.scopes.find(cluster); it != r.scopes.end()) {
    return it->second;
  }
  r.upstream[cluster] = {upstream, cluster_name};
  auto id = registry_.addCluster(cluster, r.name);
  if (!id) {
    log::error("the relay's cluster table is full: a source's cluster is not followed",
               {{"source", r.name}, {"cluster", cluster}});
    return registry::kDefaultCluster;
  }
  r.scopes.emplace(cluster, *id);
  registry_.clusters()->setStale(*id, r.state != v1::LIVE);
  return *id;
}

void Fleet::setStateLocked(Record& r, v1::SourceState state, std::string error) {
  r.last_error = state == v1::LIVE ? std::string() : std::move(error);
  if (r.state == state) {
    return;
  }
  const auto before = r.state;
  r.state = state;
  r.since_ns = nowNs();
  const bool stale = state != v1::LIVE;
  for (const auto& [cluster, id] : r.scopes) {
    registry_.clusters()->setStale(id, stale);
  }
  log::info("source state", {{"source", r.name},
                             {"from", stateName(before)},
                             {"to", stateName(state)},
                             {"error", r.last_error}});
  coverage_version_.fetch_add(1);
  registry_.nudge();  // Watches tell the new coverage.
}

bool Fleet::applyLocked(Record& r, const registry::Event& e, uint64_t source_revision) {
  if (!registry_.relay(e)) {
    return false;
  }
  if (source_revision != 0) {
    // Every write to the relay's registry is under mu_: its revision is this change's.
    r.relayed_at.emplace_back(source_revision, registry_.revision());
    if (r.relayed_at.size() > kRelayedAtKept) {
      r.relayed_at.pop_front();
    }
  }
  const auto key = std::make_pair(e.registration->cluster, e.registration->node.name);
  switch (e.type) {
    case registry::EventType::Unregistered:
      r.nodes.erase(key);
      break;
    case registry::EventType::Registered:
    case registry::EventType::HealthChanged:
    case registry::EventType::HolderChanged:
      // The registry's own copy: one per node, not two.
      r.nodes[key] = registry_.find(key.second, key.first);
      break;
    default:
      break;
  }
  return true;
}

void Fleet::dropNodesLocked(Record& r, registry::UnregisterReason reason) {
  const auto nodes = r.nodes;
  for (const auto& [key, reg] : nodes) {
    registry::Event e;
    e.type = registry::EventType::Unregistered;
    e.reason = reason;
    e.registration = reg;
    applyLocked(r, e);
  }
}

void Fleet::identified(Follower& f, const SourceIdentity& id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (f.detached) {
    return;
  }
  std::string name = id.host.empty() ? f.address() : id.host;
  auto it = records_.find(name);
  if (it != records_.end() && it->second->feeder != nullptr && it->second->feeder != &f) {
    Record& other = *it->second;
    if (other.boot_epoch == id.boot_epoch) {
      // Another address of the same daemon run (a pod's IPv4 and IPv6): one source.
      f.alias = true;
      f.record = &other;
      other.addresses.insert(f.address());
      return;
    }
    if (other.state != v1::STALE && other.state != v1::GONE) {
      // Its stream is up (LIVE, or identified and listing): another running daemon.
      // Two running daemons that call themselves the same: tell them apart by address.
      name = id.host + "@" + f.address();
      it = records_.find(name);
    } else {
      // The source came back elsewhere (a pod restarted at a new IP): follow it here.
      other.feeder->record = nullptr;
      other.feeder->alias = true;
      other.feeder = nullptr;
    }
  }
  if (f.record != nullptr && !f.alias && f.record->name != name) {
    // The address now serves another daemon: the old source lost its stream.
    Record& old = *f.record;
    old.feeder = nullptr;
    old.addresses.erase(f.address());
    setStateLocked(old, v1::STALE, f.address() + " now serves " + name);
  }
  if (it == records_.end()) {
    auto r = std::make_unique<Record>();
    r->name = name;
    r->since_ns = nowNs();
    it = records_.emplace(name, std::move(r)).first;
  }
  Record& r = *it->second;
  r.feeder = &f;
  r.address = f.address();
  r.addresses.insert(f.address());
  r.boot_epoch = id.boot_epoch;
  r.gone_since_ns.reset();
  if (auto by = discovered_by_.find(f.address()); by != discovered_by_.end()) {
    r.discovered_by = by->second;
  }
  f.record = &r;
  f.alias = false;
  for (const auto& c : id.clusters) {
    r.told[scopeLocked(r, c.source(), c.name())] = c;
  }
  if (r.state == v1::GONE) {
    setStateLocked(r, v1::STALE, "discovered again; listing");
  }
  coverage_version_.fetch_add(1);  // Known by its name now, not its address.
}

void Fleet::snapshot(Follower& f, std::vector<v1::Node> nodes, uint64_t revision) {
  std::lock_guard<std::mutex> lock(mu_);
  if (f.detached || f.alias || f.record == nullptr) {
    return;
  }
  Record& r = *f.record;
  std::map<std::pair<registry::ClusterId, std::string>, registry::RegistrationPtr> fresh;
  for (const auto& n : nodes) {
    const registry::ClusterId cluster = scopeLocked(r, n.source(), n.cluster());
    fresh.emplace(std::make_pair(cluster, n.name()), fromProto(n, cluster));
  }
  // What left while the relay was not following (or the source restarted): only this
  // source's nodes change, as ordinary events, so the relay's clients never list again.
  // A registration id means one registration only within one run of the source: after a
  // restart (a new boot epoch) the new run numbers from 1 again, and its "id 1" is another
  // node than the old run's "id 1" (a new creation, maybe a new port), so nothing of the
  // old run is kept. With no epoch told, the registration itself must match too.
  const bool same_run = r.boot_epoch != 0 && r.nodes_epoch == r.boot_epoch;
  const auto same = [same_run](const registry::Registration& a, const registry::Registration& b) {
    return a.id == b.id &&
           (same_run || (a.creation_counter == b.creation_counter && a.node.port == b.node.port &&
                         a.registered_at_ns == b.registered_at_ns));
  };
  const auto before = r.nodes;
  for (const auto& [key, old] : before) {
    auto now = fresh.find(key);
    if (now == fresh.end() || !same(*now->second, *old)) {
      registry::Event e;
      e.type = registry::EventType::Unregistered;
      e.reason = registry::UnregisterReason::SourceResynced;
      e.registration = old;
      applyLocked(r, e);
    }
  }
  for (const auto& [key, reg] : fresh) {
    auto held = r.nodes.find(key);
    registry::Event e;
    e.registration = reg;
    if (held == r.nodes.end()) {
      e.type = registry::EventType::Registered;
    } else if (sameFacts(*held->second, *reg)) {
      continue;
    } else {
      e.type = held->second->health().status != reg->health().status
                   ? registry::EventType::HealthChanged
                   : registry::EventType::HolderChanged;
    }
    applyLocked(r, e);
  }
  r.revision = revision;
  r.nodes_epoch = r.boot_epoch;
  setStateLocked(r, v1::LIVE, {});
  applied_cv_.notify_all();
}

void Fleet::events(Follower& f, std::vector<v1::NodeEvent> evs, uint64_t revision) {
  std::lock_guard<std::mutex> lock(mu_);
  if (f.detached || f.alias || f.record == nullptr) {
    return;
  }
  Record& r = *f.record;
  for (const auto& ev : evs) {
    applyLocked(r, fromProto(ev, scopeLocked(r, ev.node().source(), ev.node().cluster())),
                ev.revision());
  }
  r.revision = revision;
  setStateLocked(r, v1::LIVE, {});
  applied_cv_.notify_all();
}

void Fleet::progress(Follower& f, uint64_t revision) {
  std::lock_guard<std::mutex> lock(mu_);
  if (f.detached || f.alias || f.record == nullptr) {
    return;
  }
  f.record->revision = revision;
  setStateLocked(*f.record, v1::LIVE, {});
  applied_cv_.notify_all();
}

void Fleet::down(Follower& f, const std::string& error, bool refused) {
  std::lock_guard<std::mutex> lock(mu_);
  if (f.detached) {
    return;
  }
  f.error = error;
  f.since_ns = nowNs();
  if (f.record == nullptr || f.alias) {
    coverage_version_.fetch_add(1);
    registry_.nudge();
    return;
  }
  Record& r = *f.record;
  // Known nodes are kept and marked stale, whatever the reason (a refusal too: a rotated
  // token must not empty the view); a source never reached is unavailable. The error
  // says which it is.
  const bool known = r.state == v1::LIVE || r.state == v1::STALE || !r.nodes.empty();
  if (refused && r.state == v1::LIVE) {
    log::warn("a source refuses the relay", {{"source", r.name}, {"error", error}});
  }
  setStateLocked(r, known ? v1::STALE : v1::UNAVAILABLE, error);
  applied_cv_.notify_all();
}

// ---- What the API asks -------------------------------------------------------------------

v1::ListSourcesResponse Fleet::listSources() const {
  std::lock_guard<std::mutex> lock(mu_);
  return listSourcesLocked();
}

v1::ListSourcesResponse Fleet::listSourcesLocked() const {
  v1::ListSourcesResponse resp;
  for (const auto& [name, r] : records_) {
    auto* s = resp.add_sources();
    s->set_name(r->name);
    s->set_address(r->address);
    s->set_state(r->state);
    api::setTimestamp(r->since_ns, *s->mutable_since());
    s->set_last_error(r->last_error);
    s->set_revision(r->revision);
    s->set_nodes(static_cast<uint32_t>(r->nodes.size()));
    s->set_boot_epoch(r->boot_epoch);
    s->set_discovered_by(r->discovered_by);
    for (const auto& a : r->addresses) {
      s->add_addresses(a);
    }
  }
  for (const auto& [address, f] : followers_) {
    if (f->record != nullptr || f->alias) {
      continue;  // Listed as its source (or an address of another one's).
    }
    // Never reached: known by its address until it says who it is.
    auto* s = resp.add_sources();
    s->set_name(address);
    s->set_address(address);
    s->set_state(v1::UNAVAILABLE);
    api::setTimestamp(f->since_ns, *s->mutable_since());
    s->set_last_error(f->error);
    if (auto by = discovered_by_.find(address); by != discovered_by_.end()) {
      s->set_discovered_by(by->second);
    }
    s->add_addresses(address);
  }
  std::sort(resp.mutable_sources()->begin(), resp.mutable_sources()->end(),
            [](const v1::Source& a, const v1::Source& b) { return a.name() < b.name(); });
  resp.set_revision(registry_.revision());
  for (const auto& n : discovery_notes_) {
    resp.add_discovery(n);
  }
  return resp;
}

const std::vector<Fleet::CoverageEntry>& Fleet::coverageEntriesLocked() const {
  // Every list and every watcher asks (a watcher again at each change of coverage): built
  // once per change, not once per asker. What it says only changes with coverage_version_
  // (a state, a source found or dropped; the node count of a source that is not LIVE is
  // frozen until it is dropped, which bumps the version too).
  const uint64_t version = coverage_version_.load();
  if (version == coverage_cached_version_) {
    return coverage_cache_;
  }
  coverage_cache_.clear();
  const v1::ListSourcesResponse all = listSourcesLocked();
  for (const auto& s : all.sources()) {
    CoverageEntry e;
    e.name = s.name();
    e.live = s.state() == v1::LIVE;
    if (!e.live) {
      e.warning = "source " + s.name() + " (" + s.address() + ") is " +
                  std::string(stateName(s.state())) + " since " +
                  google::protobuf::util::TimeUtil::ToString(s.since());
      if (!s.last_error().empty()) {
        e.warning += ": " + s.last_error();
      }
      e.warning += s.nodes() > 0
                       ? "; its " + std::to_string(s.nodes()) + " nodes are the last known"
                       : "; none of its nodes are known";
    }
    coverage_cache_.push_back(std::move(e));
  }
  coverage_cached_version_ = version;
  return coverage_cache_;
}

v1::Coverage Fleet::coverage(std::string_view source) const {
  std::lock_guard<std::mutex> lock(mu_);
  v1::Coverage c;
  for (const auto& e : coverageEntriesLocked()) {
    if (!source.empty() && e.name != source) {
      continue;
    }
    if (e.live) {
      c.add_live(e.name);
    } else {
      c.add_unreachable(e.name);
      c.add_warnings(e.warning);
    }
  }
  return c;
}

std::optional<v1::Cluster> Fleet::sourceCluster(registry::ClusterId cluster) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = records_.find(registry_.clusters()->source(cluster));
  if (it == records_.end()) {
    return std::nullopt;
  }
  const Record& r = *it->second;
  auto told = r.told.find(cluster);
  if (told == r.told.end()) {
    return std::nullopt;
  }
  v1::Cluster c = told->second;
  c.set_serving(c.serving() && r.state == v1::LIVE);
  return c;
}

bool Fleet::knowsSource(std::string_view source) const {
  std::lock_guard<std::mutex> lock(mu_);
  return records_.count(std::string(source)) != 0;
}

Fleet::Record* Fleet::recordOfLocked(registry::ClusterId cluster) {
  const std::string& source = registry_.clusters()->source(cluster);
  auto it = records_.find(source);
  return it == records_.end() ? nullptr : it->second.get();
}

namespace {

api::Error unreachable(const std::string& name, v1::SourceState state, const std::string& why) {
  return api::Error{api::Code::Unavailable,
                    "source " + name + " is " + std::string(stateName(state)) +
                        (why.empty() ? "" : " (" + why + ")") +
                        ": a write through the relay needs its source, so it fails closed",
                    {}};
}

api::Error fromSource(const std::string& name, const grpc::Status& s) {
  return api::Error{
      static_cast<api::Code>(s.error_code()), "source " + name + ": " + s.error_message(), {}};
}

}  // namespace

std::shared_ptr<Fleet::Follower> Fleet::feederOfLocked(const Record& r) const {
  if (r.feeder == nullptr) {
    return nullptr;
  }
  auto it = followers_.find(r.address);
  return it == followers_.end() ? nullptr : it->second;
}

uint64_t Fleet::relayRevision(const std::string& name, uint64_t source_revision) {
  if (source_revision == 0) {
    return 0;
  }
  std::unique_lock<std::mutex> lock(mu_);
  const Record* r = nullptr;
  // The source answered before its stream brought the change, most of the time by a
  // fraction of a millisecond: wait for the stream, not longer than an RPC may take.
  applied_cv_.wait_for(lock, options_.stream.rpc_timeout, [&] {
    auto it = records_.find(name);
    r = it == records_.end() ? nullptr : it->second.get();
    return r == nullptr || r->revision >= source_revision || r->state != v1::LIVE;
  });
  if (r == nullptr) {
    return 0;
  }
  for (auto it = r->relayed_at.rbegin(); it != r->relayed_at.rend(); ++it) {
    if (it->first == source_revision) {
      return it->second;
    }
  }
  return 0;
}

Result<v1::EvictNodeResponse, api::Error> Fleet::evict(const registry::Registration& node,
                                                       v1::EvictNodeRequest request) {
  std::shared_ptr<Follower> f;
  std::string name;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Record* r = recordOfLocked(node.cluster);
    if (r != nullptr && r->state == v1::LIVE) {
      f = feederOfLocked(*r);
    }
    if (f == nullptr) {
      return makeErr(unreachable(r ? r->name : registry_.clusters()->source(node.cluster),
                                 r ? r->state : v1::GONE, r ? r->last_error : ""));
    }
    if (r->boot_epoch != 0) {
      request.set_boot_epoch(r->boot_epoch);
    }
    if (auto up = r->upstream.find(request.cluster()); up != r->upstream.end()) {
      request.set_source(up->second.first);  // The source is a relay: its source, its cluster.
      request.set_cluster(up->second.second);
    }
    name = r->name;
  }
  v1::EvictNodeResponse resp;
  const grpc::Status s = f->stream().evict(request, &resp);
  if (!s.ok()) {
    return makeErr(fromSource(name, s));
  }
  // The relay's revisions, which its clients watch from; and the relay's own view of the
  // node (its source and cluster as the relay names them).
  resp.set_revision(relayRevision(name, resp.revision()));
  api::toProto(api::ClusterNames::of(registry_), node, *resp.mutable_node());
  if (resp.has_hold()) {
    resp.mutable_hold()->set_revision(relayRevision(name, resp.hold().revision()));
    resp.mutable_hold()->set_source(name);
  }
  return resp;
}

Result<v1::LiftHoldResponse, api::Error> Fleet::liftHold(std::string_view source,
                                                         v1::LiftHoldRequest request) {
  std::shared_ptr<Follower> f;
  const std::string name(source);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = records_.find(name);
    if (it != records_.end() && it->second->state == v1::LIVE) {
      f = feederOfLocked(*it->second);
    }
    if (f == nullptr) {
      return makeErr(unreachable(name, it == records_.end() ? v1::GONE : it->second->state,
                                 it == records_.end() ? "" : it->second->last_error));
    }
    const auto& upstream = it->second->upstream;
    if (auto up = upstream.find(request.cluster().empty() ? "default" : request.cluster());
        up != upstream.end()) {
      request.set_source(up->second.first);
      request.set_cluster(up->second.second);
    }
  }
  v1::LiftHoldResponse resp;
  const grpc::Status s = f->stream().liftHold(request, &resp);
  if (!s.ok()) {
    return makeErr(fromSource(name, s));
  }
  resp.set_revision(relayRevision(name, resp.revision()));
  resp.mutable_hold()->set_revision(relayRevision(name, resp.hold().revision()));
  resp.mutable_hold()->set_source(name);
  return resp;
}

}  // namespace epmdx::fleet
