#pragma once

// Who holds a TCP port on this host: for the error a user sees when an admin address is
// taken ("127.0.0.1:4370 is in use by pid 812 (epmdx)"). Reads /proc/net/tcp{,6} for the
// listening socket's inode and /proc/*/fd for its process; empty when it cannot be seen
// (another user's process without the right to read its descriptors, another namespace).

#include <cstdint>
#include <string>

namespace epmdx::admin {

/// "pid 812 (epmdx)", or "" when the holder cannot be found.
std::string describePortHolder(uint16_t port);

}  // namespace epmdx::admin
