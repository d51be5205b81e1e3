#pragma once

#include <string>

#include "server/common/asio.h"

namespace epmdx {

/// "127.0.0.1:4369" or "[::1]:4369": the one text of a peer or listen address that logs, the
/// registry's origin and the admin APIs show.
std::string formatEndpoint(const tcp::endpoint& ep);

}  // namespace epmdx
