#pragma once

// The fleet relay's core: which sources there are (discovery), one SourceStream per
// address, and what each stream says applied to the relay's own registry (Registry::relay),
// so that the relay's history, watches and adapters are the daemon's own. A source is known
// by what it says about itself (its host and boot epoch), not by its address: a pod that
// comes back at a new IP is the same source, two addresses of one daemon are one source.
//
// A source that stops answering is never shown as empty: its nodes stay, marked stale, until
// discovery drops it and the grace period ends. A failed DNS lookup keeps every source it
// found before (libcluster #82 is the mistake not to make).

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "server/api/fleet_view.h"
#include "server/fleet/dns_resolver.h"
#include "server/fleet/source_stream.h"
#include "server/registry/registry.h"

namespace epmdx::fleet {

struct FleetOptions {
  std::vector<std::string> sources;  // --source: gRPC addresses, HOST:PORT.
  std::vector<DnsQuery> dns;         // --sources-dns.
  std::string dns_server;            // --dns-server ("" the system's resolver).
  std::chrono::milliseconds dns_interval{5000};
  std::chrono::milliseconds dns_timeout{2000};
  std::string sources_file;  // --sources-file (re-read on SIGHUP).
  std::chrono::milliseconds gone_grace{60000};
  SourceStreamOptions stream;  // The token, TLS and timeouts every stream gets (no address).
};

class Fleet final : public api::FleetView {
 public:
  Fleet(registry::Registry& registry, FleetOptions options);
  ~Fleet() override;
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  /// Reads the sources file (an error names its line), discovers once, starts the streams
  /// and the discovery thread.
  std::optional<std::string> start();
  void stop();
  /// SIGHUP: reads the sources file again (a broken file keeps the sources in force) and
  /// the token file's token for new connections.
  void reload(std::optional<std::string> token);

  // api::FleetView
  v1::ListSourcesResponse listSources() const override;
  v1::Coverage coverage(std::string_view source) const override;
  uint64_t coverageVersion() const override { return coverage_version_.load(); }
  bool knowsSource(std::string_view source) const override;
  std::optional<v1::Cluster> sourceCluster(registry::ClusterId cluster) const override;
  Result<v1::EvictNodeResponse, api::Error> evict(const registry::Registration& node,
                                                  v1::EvictNodeRequest request) override;
  Result<v1::LiftHoldResponse, api::Error> liftHold(std::string_view source,
                                                    v1::LiftHoldRequest request) override;

 private:
  struct Record;
  class Follower;
  friend class Follower;

  // What the streams say, under mu_ (each from its follower's thread).
  void identified(Follower& f, const SourceIdentity& id);
  void snapshot(Follower& f, std::vector<v1::Node> nodes, uint64_t revision);
  void events(Follower& f, std::vector<v1::NodeEvent> events, uint64_t revision);
  void progress(Follower& f, uint64_t revision);
  void down(Follower& f, const std::string& error, bool refused);

  void discoveryLoop();
  /// One round: the addresses every method gives now (a failed lookup keeps its last answer).
  std::set<std::string> discover();
  void reconcile(const std::set<std::string>& wanted);
  /// Removes the nodes of sources GONE for longer than the grace period.
  void expireGone();

  /// The relay's cluster for a source's `cluster`. A source that is itself a relay names
  /// its own source too (`upstream`): the relay's cluster is then "UPSTREAM/CLUSTER", so that
  /// the same name on two of the inner relay's sources stays two nodes here.
  registry::ClusterId scopeLocked(Record& r, const std::string& upstream,
                                  const std::string& cluster);
  void setStateLocked(Record& r, v1::SourceState state, std::string error);
  /// Applies one of r's changes to the registry; false when it changes nothing there.
  bool applyLocked(Record& r, const registry::Event& e, uint64_t source_revision = 0);
  void dropNodesLocked(Record& r, registry::UnregisterReason reason);
  Record* recordOfLocked(registry::ClusterId cluster);
  /// The follower that writes `r` (shared: discovery may drop it while a call runs), or null.
  std::shared_ptr<Follower> feederOfLocked(const Record& r) const;
  /// The relay's revision of the change that was `source_revision` at source `name`, once
  /// its stream brought it (waiting at most the RPC timeout); 0 when it has not.
  uint64_t relayRevision(const std::string& name, uint64_t source_revision);
  /// The coverage of every source (cached per coverage_version_): name, live, warning.
  struct CoverageEntry {
    std::string name;
    bool live = false;
    std::string warning;
  };
  const std::vector<CoverageEntry>& coverageEntriesLocked() const;
  v1::ListSourcesResponse listSourcesLocked() const;

  registry::Registry& registry_;
  FleetOptions options_;
  DnsResolver resolver_;

  mutable std::mutex mu_;
  std::condition_variable applied_cv_;            // A stream applied something (or went down).
  mutable uint64_t coverage_cached_version_ = 0;  // Guarded by mu_, as the cache.
  mutable std::vector<CoverageEntry> coverage_cache_;
  std::map<std::string, std::unique_ptr<Record>> records_;      // By source name.
  std::map<std::string, std::shared_ptr<Follower>> followers_;  // By address.
  std::map<std::string, std::string> discovered_by_;            // Address -> "dns:NAME", ...
  std::map<std::string, std::vector<std::string>> dns_last_;    // Query -> last good answer.
  std::vector<std::string> file_sources_;
  std::vector<std::string> discovery_notes_;
  std::atomic<uint64_t> coverage_version_{1};

  std::mutex loop_mu_;
  std::condition_variable loop_cv_;
  bool stopping_ = false;  // Guarded by loop_mu_.
  bool rediscover_ = false;
  std::thread loop_;
};

}  // namespace epmdx::fleet
