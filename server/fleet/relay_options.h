#pragma once

// epmdx-fleet's command line (CLI11): its sources, how it reaches them, and its own API
// (the daemon's flag names and forms where they mean the same).

#include <optional>
#include <string>
#include <vector>

#include "server/fleet/fleet.h"

namespace epmdx::fleet {

struct RelayOptions {
  FleetOptions fleet;
  std::string source_token_file;  // --source-token-file: the token the relay presents.
  std::string grpc_listen = "127.0.0.1:4372";
  std::string http_listen = "127.0.0.1:4373";
  std::string http_allowed_hosts;
  std::string tokens_file;
  std::string token_out;
  std::string grpc_tls_cert;
  std::string grpc_tls_key;
  std::string grpc_tls_client_ca;
  bool http_anonymous_read = true;
  std::string web_root;
  std::string log_format = "text";
  size_t max_watchers = 1024;
  size_t history_size = 65536;
  bool debug = false;
};

/// Parses the arguments (and EPMDX_FLEET_* environment). On --help/--version or an error:
/// the exit code (0 or 2), with the text already printed.
std::variant<RelayOptions, int> parseRelayOptions(int argc, char** argv);

/// The token in a --source-token-file (the first non-empty line, trimmed), or an error.
Result<std::string, std::string> readSourceToken(const std::string& path);

/// "5s", "500ms", "2m", or a bare number of seconds.
std::optional<std::chrono::milliseconds> parseDuration(std::string_view text);

}  // namespace epmdx::fleet
