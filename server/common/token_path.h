#pragma once

// Where a daemon writes the admin token it generates, and where epmdxctl looks for it.
// One file per daemon, named after the daemon's admin port (gRPC, else HTTP): two daemons
// on one host never share a file, and a client pointed at HOST:PORT finds the right one.
// EPMDX_TOKEN_FILE (daemon: --token-out) names one file explicitly and wins over both.

#include <cstdint>
#include <string>

namespace epmdx {

using GetenvFn = const char* (*)(const char*);

/// $XDG_RUNTIME_DIR/epmdx, else $HOME/.config/epmdx, else /tmp/epmdx-UID.
std::string tokenDirectory(GetenvFn getenv_fn);

/// tokenDirectory()/admin-PORT.token.
std::string tokenPathForPort(GetenvFn getenv_fn, uint16_t port);

}  // namespace epmdx
