#include "ctl/server_target.h"

#include <algorithm>

#include "ctl/token_source.h"

namespace epmdx::ctl {

std::string withDefaultPort(const std::string& server, uint16_t port) {
  if (server.empty() || targetPort(server) || server.rfind("unix:", 0) == 0 ||
      server.rfind("unix-abstract:", 0) == 0) {
    return server;
  }
  // The scheme ("dns:///", "ipv4:", "ipv6:") stays; only the host after it gains the port.
  size_t host_at = 0;
  if (const auto scheme = server.find(":///"); scheme != std::string::npos) {
    host_at = scheme + 4;
  } else if (server.rfind("ipv4:", 0) == 0 || server.rfind("ipv6:", 0) == 0) {
    host_at = 5;
  }
  const std::string prefix = server.substr(0, host_at);
  const std::string host = server.substr(host_at);
  const std::string suffix = ":" + std::to_string(port);
  if (host.empty()) {
    return server;
  }
  if (host.front() == '[') {
    // "[::1]" gains the port; "[::1]:x" has one already (a bad one is gRPC's to refuse).
    return host.back() == ']' ? prefix + host + suffix : server;
  }
  const auto colons = std::count(host.begin(), host.end(), ':');
  if (colons == 1) {
    return server;  // "host:x": a port, if not a valid one.
  }
  if (colons > 1) {
    return prefix + "[" + host + "]" + suffix;  // "::1": a bare IPv6 literal.
  }
  return prefix + host + suffix;
}

}  // namespace epmdx::ctl
