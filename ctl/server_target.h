#pragma once

// --server as the user typed it, made into a gRPC target: a host without a port means the
// daemon's default admin port (4370), as `epmdxctl --server=localhost` users expect. gRPC
// itself would dial 443 (its https default) for a target without a port.

#include <cstdint>
#include <string>

namespace epmdx::ctl {

constexpr uint16_t kDefaultAdminPort = 4370;

/// "localhost" -> "localhost:4370", "::1" and "[::1]" -> "[::1]:4370",
/// "dns:///h" -> "dns:///h:4370", "ipv4:10.0.0.5" -> "ipv4:10.0.0.5:4370". A target with a
/// port, a unix socket ("unix:", "unix-abstract:") or an empty one is returned unchanged.
std::string withDefaultPort(const std::string& server, uint16_t port = kDefaultAdminPort);

}  // namespace epmdx::ctl
