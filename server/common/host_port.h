#pragma once

// HOST:PORT as the daemon's listen addresses and epmdxctl's --server spell it: "host:4370",
// "10.0.0.5:4370", "[::1]:4370", and without a port "host", "[::1]" or a bare IPv6 literal
// "::1" (more than one colon and no brackets: an address, never an address and a port).
// One parser, so the daemon and its client agree on what names a port.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace epmdx {

struct HostPort {
  std::string host;              // Without the brackets of "[::1]".
  std::optional<uint16_t> port;  // Absent when the text names none; 0 is a port ("pick one").
};

/// Splits `text`. nullopt when it has a port part that is not a port: "host:", "host:x",
/// "host:70000", "[::1]:", "[::1]x", "[::1".
std::optional<HostPort> parseHostPort(std::string_view text);

/// "host:4370", "[::1]:4370" (an IPv6 literal gets its brackets).
std::string joinHostPort(std::string_view host, uint16_t port);

/// "a.example, B.example,," -> {"a.example", "b.example"}: a comma-separated list of host
/// names (--http-allowed-hosts), each trimmed and lower-cased (host names are
/// case-insensitive), empty items dropped.
std::vector<std::string> splitHostList(std::string_view text);

}  // namespace epmdx
