#pragma once

// How epmdx-fleet finds the epmdx daemons behind a DNS name (--sources-dns): a Kubernetes
// headless service's A and AAAA records, or its SRV records. Through c-ares, so that the
// server (--dns-server) and the timeout are ours to choose and a lookup never blocks longer
// than asked.
//
// The one rule that matters (libcluster #82 is what breaks without it): a lookup that failed
// (timeout, SERVFAIL, REFUSED, unreachable server, malformed answer, one address family of
// two) is never reported as "no daemons". Only the resolver saying so (NXDOMAIN, NODATA) is.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "server/common/result.h"

namespace epmdx::fleet {

/// More addresses than this in one answer fail the lookup (never a truncated list: the
/// daemons left out would look gone).
inline constexpr size_t kMaxDnsAddresses = 1024;

struct DnsQuery {
  std::string name;   // "app-headless.default.svc.cluster.local", or for SRV "_grpc._tcp.app-..."
  uint16_t port = 0;  // A/AAAA: the port every answer gets; 0: SRV (ports from the records).
  /// "NAME:PORT" or "NAME" (SRV), as given.
  std::string text() const;
};

/// A --sources-dns value: "NAME:PORT" (A and AAAA) or "_service._proto.NAME" (SRV, no port).
/// A trailing dot makes NAME absolute (no search domains). Errors say what is wrong.
Result<DnsQuery, std::string> parseDnsQuery(std::string_view text);

/// A --dns-server value: "HOST:PORT" or "HOST" (port 53), HOST an IPv4 or an IPv6 literal
/// ("[fd00::10]:53"; a resolver's own address cannot be looked up). Returns it as c-ares
/// spells it: "10.96.0.10:53", "[fd00::10]:53".
Result<std::string, std::string> parseDnsServer(std::string_view text);

struct DnsAnswer {
  /// The resolver answered: NOERROR, NODATA or NXDOMAIN (then `addresses` may be empty).
  /// false: timeout, SERVFAIL, REFUSED, unreachable server, malformed answer -- a failed
  /// lookup, never "no daemons".
  bool ok = false;
  std::string error;  // Why not ok, for people: "A app.local: timeout after 2000 ms from ...".
  std::vector<std::string> addresses;  // "10.0.0.7:4370", "[fd00::7]:4370": sorted, unique.
};

class DnsResolver {
 public:
  /// server: "" = the system's resolver (/etc/resolv.conf, read at every lookup, with its
  /// search domains and ndots); else a parseDnsServer() value, whose names are absolute.
  /// `timeout` bounds one whole resolve() (every question, every server, every retry).
  DnsResolver(std::string server, std::chrono::milliseconds timeout);
  ~DnsResolver();
  DnsResolver(const DnsResolver&) = delete;
  DnsResolver& operator=(const DnsResolver&) = delete;

  /// Blocking. A and AAAA together (both asked; NODATA for one family is fine, a failure of
  /// either fails the whole lookup), or SRV then its targets' A and AAAA (from the SRV
  /// answer's additional section when it has them). Safe to call from several threads: every
  /// call has its own c-ares channel.
  DnsAnswer resolve(const DnsQuery& query) const;

 private:
  std::string server_;        // c-ares' form, or "" for the system's resolver.
  std::string server_error_;  // Set when the server text was not a server: every lookup fails.
  std::chrono::milliseconds timeout_;
};

}  // namespace epmdx::fleet
