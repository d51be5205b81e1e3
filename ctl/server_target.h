#pragma once

// --server as the user typed it, made into a gRPC target: a host without a port means the
// daemon's default admin port (4370), as `epmdxctl --server=localhost` users expect. gRPC
// itself would dial 443 (its https default) for a target without a port. The HOST:PORT part
// is read by the daemon's own parser (server/common/host_port.h).

#include <cstdint>
#include <optional>
#include <string>

namespace epmdx::ctl {

constexpr uint16_t kDefaultAdminPort = 4370;

/// The port of a gRPC target "HOST:PORT", "[V6]:PORT", "dns:///HOST:PORT"; none if absent
/// (or 0, which no daemon serves on).
std::optional<uint16_t> targetPort(const std::string& target);

/// "localhost" -> "localhost:4370", "::1" and "[::1]" -> "[::1]:4370",
/// "dns:///h" -> "dns:///h:4370", "ipv4:10.0.0.5" -> "ipv4:10.0.0.5:4370". A target with a
/// port, a unix socket ("unix:", "unix-abstract:") or an empty one is returned unchanged.
std::string withDefaultPort(const std::string& server, uint16_t port = kDefaultAdminPort);

}  // namespace epmdx::ctl
