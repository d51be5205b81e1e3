#pragma once

// The kernel's table of TCP sockets, read through NETLINK_SOCK_DIAG (inet_diag), the
// interface `ss` uses: one dump per address family, filtered in the kernel by destination
// port, so the cost follows the connections to that port and not every socket of the host.
// Sees the sockets of the caller's network namespace only.

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "server/common/result.h"
#include "server/holder/endpoint.h"

namespace epmdx::holder {

struct TcpSocket {
  ConnectionKey key;  // local = the socket's own address, remote = its peer.
  uint64_t inode = 0;
  uid_t uid = 0;      // The socket's owner (the user that created it).
  uint8_t state = 0;  // TCP_ESTABLISHED, ... (netinet/tcp.h).
};

/// Every connected IPv4 and IPv6 TCP socket whose remote port is `remote_port` (every
/// connected socket when nullopt). Blocking, a few system calls; thread-safe (each call
/// opens its own netlink socket). The error text names the failing call.
Result<std::vector<TcpSocket>, std::string> dumpTcpSockets(std::optional<uint16_t> remote_port);

}  // namespace epmdx::holder
