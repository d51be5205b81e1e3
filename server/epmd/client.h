#pragma once

// The interactive commands of OTP's epmd (`-names`, `-dump`, `-kill`, `-stop NAME`,
// `-started`), with OTP's output texts and exit codes (erts/epmd/src/epmd_cli.c), so that
// scripts written for `epmd` work unchanged with `epmdx`.

#include <cstdint>
#include <string>

namespace epmdx::epmd {

enum class ClientCommand { Names, Started, Dump, Kill, Stop };

/// Runs one command against the epmd on localhost:`port` (::1 first, then 127.0.0.1),
/// printing to stdout/stderr as OTP does. @return the process exit code.
int runClient(ClientCommand command, uint16_t port, const std::string& stop_name = {});

}  // namespace epmdx::epmd
