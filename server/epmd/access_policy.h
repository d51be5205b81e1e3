#pragma once

// Who may ask a cluster's epmd port for what: epmdx's answer to epmd's well-known security
// note (NAMES tells anyone who can reach the port every node name on the host). Per cluster,
// off by default so the wire stays OTP's: which peers may list names (NAMES, DUMP) and which
// may resolve them (PORT_PLEASE2): `any`, `loopback`, or a list of CIDRs (IPv4 and IPv6,
// `loopback` may be one of them). A refused request gets OTP's treatment of a refused
// request: the connection closes without a reply. Registrations (ALIVE2) stay local-only,
// as in OTP, whatever the policy.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "server/common/asio.h"
#include "server/common/result.h"

namespace epmdx::epmd {

/// The peers one kind of request is open to.
class PeerRule {
 public:
  /// "any" | "loopback" | a comma-separated list of CIDRs and/or "loopback"
  /// ("10.0.0.0/8,fd00::/8,loopback"). A bare address is a /32 or /128.
  static Result<PeerRule, std::string> parse(std::string_view text);

  bool allows(const asio::ip::address& peer) const;
  bool any() const { return any_; }
  /// The rule as parse() reads it back ("any", "loopback,10.0.0.0/8").
  std::string toString() const;

 private:
  struct Cidr {
    asio::ip::address_v6 base;  // IPv4 as IPv4-mapped IPv6, so one comparison serves both.
    unsigned prefix = 0;        // Over the 128 bits.
  };
  bool any_ = true;
  bool loopback_ = false;
  std::vector<Cidr> cidrs_;
  std::vector<std::string> text_;
};

struct AccessPolicy {
  PeerRule names;    // NAMES_REQ, DUMP_REQ.
  PeerRule lookups;  // PORT_PLEASE2_REQ.
};
using AccessPolicyPtr = std::shared_ptr<const AccessPolicy>;

}  // namespace epmdx::epmd
