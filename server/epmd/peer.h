#pragma once

#include <functional>
#include <optional>
#include <string>

#include "server/common/asio.h"

namespace epmdx::epmd {

/// OTP's conn_local_peer_check: the peer is 127.0.0.0/8 or ::1 (or an IPv4-mapped
/// 127.0.0.0/8), or its address equals the address it connected to (the host's own IP).
/// `local` is asked for only when the remote address is not a loopback address.
bool isLocalPeer(const tcp::endpoint& remote,
                 const std::function<std::optional<tcp::endpoint>()>& local);

}  // namespace epmdx::epmd
