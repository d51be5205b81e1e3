#pragma once

// A real DNS server for tests: Debian's dnsmasq (dnsmasq-base) on 127.0.0.1 and a free port
// (UDP and TCP), in the foreground, without any system configuration, answering only from
// files this fixture writes. Names under its zone that are not in those files get NXDOMAIN;
// names outside the zone get REFUSED (it has no upstream server).

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace epmdx::testing {

class Dnsmasq {
 public:
  struct Srv {
    std::string target;  // A name this server knows (setHosts) for its addresses to come too.
    uint16_t port = 0;
    uint16_t priority = 0;
    uint16_t weight = 0;
  };

  /// Starts dnsmasq, answering for `zone` ("cluster.local": app.cluster.local, ...), and waits
  /// until it answers. Throws std::runtime_error (with dnsmasq's output) if it cannot start.
  explicit Dnsmasq(std::string zone = "cluster.local");
  ~Dnsmasq();
  Dnsmasq(const Dnsmasq&) = delete;
  Dnsmasq& operator=(const Dnsmasq&) = delete;

  uint16_t port() const { return port_; }
  /// "127.0.0.1:P", for --dns-server.
  std::string address() const;
  const std::string& zone() const { return zone_; }

  /// Replaces every A and AAAA record (name -> its IPv4 and IPv6 addresses), then SIGHUPs
  /// dnsmasq (it re-reads its hosts files) and returns once the new records are served.
  void setHosts(const std::map<std::string, std::vector<std::string>>& hosts);
  /// Replaces every SRV record (name -> records) and restarts dnsmasq on the same port (it
  /// reads them only at start); returns once it answers again.
  void setSrv(const std::map<std::string, std::vector<Srv>>& records);

  /// SIGSTOP: it receives queries and answers none (lookups time out). resume(): SIGCONT.
  void pause();
  void resume();

  /// What dnsmasq logged: one "query[A] NAME from 127.0.0.1" line per question it got.
  std::string log() const;

 private:
  void start();
  void writeHosts();
  void writeConfig();
  /// Polls (with a real query) until the current generation's marker name resolves.
  void waitServing();

  std::string zone_;
  std::string dir_;
  uint16_t port_ = 0;
  unsigned generation_ = 0;  // Marker "epmdx-fixture-gen-N.ZONE": which hosts file is served.
  std::map<std::string, std::vector<std::string>> hosts_;
  std::map<std::string, std::vector<Srv>> srv_;
  std::unique_ptr<Process> process_;
  std::string old_log_;  // Output of earlier runs (before setSrv's restarts).
};

/// One question over UDP to 127.0.0.1:port (type 1 = A, 28 = AAAA, 33 = SRV): the reply's
/// RCODE and answer count, or nullopt if no reply came within `timeout`.
struct DnsReplyHeader {
  int rcode = 0;
  int answers = 0;
};
std::optional<DnsReplyHeader> queryDns(uint16_t port, const std::string& name, int type,
                                       std::chrono::milliseconds timeout);

}  // namespace epmdx::testing
