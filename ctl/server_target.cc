#include "ctl/server_target.h"

#include "server/common/host_port.h"

namespace epmdx::ctl {
namespace {

/// Where the HOST:PORT part of a gRPC target starts: after "dns:///", "ipv4:" or "ipv6:".
size_t hostStart(const std::string& target) {
  if (const auto scheme = target.find(":///"); scheme != std::string::npos) {
    return scheme + 4;
  }
  if (target.rfind("ipv4:", 0) == 0 || target.rfind("ipv6:", 0) == 0) {
    return 5;
  }
  return 0;
}

}  // namespace

std::optional<uint16_t> targetPort(const std::string& target) {
  const auto hp = parseHostPort(std::string_view(target).substr(hostStart(target)));
  if (!hp || !hp->port || *hp->port == 0) {
    return std::nullopt;
  }
  return hp->port;
}

std::string withDefaultPort(const std::string& server, uint16_t port) {
  if (server.empty() || server.rfind("unix:", 0) == 0 || server.rfind("unix-abstract:", 0) == 0) {
    return server;
  }
  // The scheme ("dns:///", "ipv4:", "ipv6:") stays; only the host after it gains the port.
  const size_t at = hostStart(server);
  const auto hp = parseHostPort(std::string_view(server).substr(at));
  // A port already (even a bad one: gRPC's to refuse), or no host to give one.
  if (!hp || hp->port || hp->host.empty()) {
    return server;
  }
  return server.substr(0, at) + joinHostPort(hp->host, port);
}

}  // namespace epmdx::ctl
