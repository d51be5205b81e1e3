#pragma once

// The host part of a node's Erlang name ("name@host"). epmd only ever receives the name;
// the host is what the node's own command line says (-sname/-name), else the daemon's host
// for a node on this host. Node.host in proto/epmdx/v1/registry.proto says the rules.

#include <optional>
#include <string>
#include <string_view>

#include "server/registry/types.h"

namespace epmdx::api {

/// The daemon's own host names, as Erlang derives a node's host from them.
struct HostNames {
  std::string short_name;  // gethostname up to the first dot (-sname N).
  std::string long_name;   // The full name (-name N): see readHostNames().
};

/// Reads the host names: gethostname; the long one is it when it has a dot, else the
/// resolver's canonical name for it when that has a dot, else gethostname again. Blocking
/// (the resolver): called once, at start.
HostNames readHostNames();

/// The daemon's host names, read on the first call (App calls it at start, before any
/// epmd or API thread runs) and the same for the life of the process.
const HostNames& daemonHostNames();

/// A node name given on a command line.
struct CommandLineName {
  std::string name;         // Before the '@' (or the whole value).
  std::string host;         // After the '@'; empty when the value has none.
  bool long_names = false;  // -name (true) or -sname (false).
};

/// The node name a command line gives with `-sname VALUE` or `-name VALUE` (arguments
/// separated by NULs, as in /proc/PID/cmdline, or by spaces, as HolderProcess.command_line
/// joins them; a node name has neither). nullopt when there is none, when the flag is last
/// with no value, or when there are several (which one the VM took is not ours to guess).
std::optional<CommandLineName> parseNodeName(std::string_view command_line);

/// The host the command line gives registered name `name`: the host after '@', else the
/// daemon's short (-sname) or long (-name) host name. Empty when the command line names no
/// node or another one.
std::string hostFromCommandLine(std::string_view command_line, std::string_view name,
                                const HostNames& names);

/// Node.host for a registration (see registry.proto).
std::string nodeHost(const registry::Registration& r, const HostNames& names);

}  // namespace epmdx::api
