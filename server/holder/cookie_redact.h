#pragma once

// The Erlang cookie is a password: anyone who has it can connect a node to the cluster and
// run any code there. OTP and Elixir put it on the VM's command line, which the holder
// lookup reads from /proc/PID/cmdline and every API then shows. So the command line is
// redacted as it is read, once, before anything else in the daemon can keep or print it.

#include <string>
#include <string_view>

namespace epmdx::holder {

/// What stands in for a cookie.
inline constexpr std::string_view kRedactedCookie = "[redacted]";

/// `argv` with every cookie replaced by kRedactedCookie. Arguments are separated by NULs,
/// as in /proc/PID/cmdline (a trailing NUL is kept as it was). Forms:
///  - `-setcookie COOKIE` and `-setcookie NODE COOKIE` (erl; init reads a flag's values up to
///    the next argument starting with '-'; the first of two is the node, which stays; of
///    any other number every value goes). They
///    reach beam.smp's argv also from ERL_FLAGS/ERL_AFLAGS/ERL_ZFLAGS and `-args_file`,
///    which erlexec expands onto it, and from Elixir's `--cookie C`, which its launcher
///    turns into `-setcookie C`.
///  - `--cookie COOKIE` and `--cookie=COOKIE` (Elixir's launcher flag, should a process that
///    still carries it hold a socket).
std::string redactCookies(std::string_view argv);

}  // namespace epmdx::holder
