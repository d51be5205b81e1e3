#pragma once

// Where a daemon writes the admin token it generates, and where epmdxctl looks for it.
// One file per daemon, named after the daemon's admin port (gRPC, else HTTP): two daemons
// on one host never share a file, and a client pointed at HOST:PORT finds the right one.
// EPMDX_TOKEN_FILE (daemon: --token-out) names one file explicitly and wins over both.

#include <cstdint>
#include <string>
#include <vector>

namespace epmdx {

using GetenvFn = const char* (*)(const char*);

/// $XDG_RUNTIME_DIR/epmdx, else $HOME/.config/epmdx, else /tmp/epmdx-UID.
std::string tokenDirectory(GetenvFn getenv_fn);

/// tokenDirectory()/admin-PORT.token.
std::string tokenPathForPort(GetenvFn getenv_fn, uint16_t port);

/// Removes the generated token files (admin-PORT.token) in `directory` that no running
/// daemon holds, except `keep`: files of daemons that stopped, left one per port ever used.
/// A running daemon holds a flock() on its file for its lifetime; a file we can lock is
/// nobody's, and is unlinked while we hold the lock. Only regular files of our own are
/// touched (symlinks are not followed). @return the names removed.
std::vector<std::string> removeStaleTokenFiles(const std::string& directory,
                                               const std::string& keep);

}  // namespace epmdx
