#pragma once

// The epmdx command line. OTP's single-dash epmd flags keep OTP's meaning, parsing order
// and errors (erts/epmd/src/epmd.c: main); epmdx's own options use GNU long form
// (--grpc-listen=HOST:PORT) so the two never clash. One table in options.cc says, for each
// option, its names, its environment variable, how its value is read and where it goes, and
// its --help text: parsing, the environment and the help all follow from it.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "server/app/access_config.h"
#include "server/epmd/client.h"
#include "server/grpc/grpc_server.h"
#include "server/http/http_server.h"
#include "server/registry/registry.h"

namespace epmdx::app {

inline constexpr uint16_t kDefaultEpmdPort = 4369;

/// One more cluster (--cluster=NAME=PORT[@ADDRESSES]): an epmd port with its own names.
struct ClusterConfig {
  std::string name;
  uint16_t port = 0;
  std::string addresses;  // As -address: empty = every address.
};

struct Options {
  // OTP's epmd.
  int debug = 0;
  uint16_t port = kDefaultEpmdPort;
  std::string addresses;
  std::vector<ClusterConfig> clusters;  // Besides the default cluster (-port).
  std::vector<AccessDirective> access;  // --names-from / --lookups-from, in order.
  std::string access_file;              // Re-read on SIGHUP; its directives come last.
  bool daemon = false;
  bool relaxed = false;
  bool systemd = false;
  int packet_timeout = 60;
  int delay_accept = 0;
  int delay_write = 0;
  std::optional<epmd::ClientCommand> command;
  std::string stop_name;

  // epmdx. A default the server or the registry has already is taken from there, so it is
  // written once (and --help prints it from here).
  std::string grpc_listen = grpcapi::GrpcOptions{}.listen;  // "off" disables.
  std::string http_listen = http::HttpOptions{}.listen;     // "off" disables.
  // Set by a flag or variable: failing to bind is then an error, not a surface left off.
  bool grpc_listen_explicit = false;
  bool http_listen_explicit = false;
  std::string http_allowed_hosts;  // Comma separated; empty: the default (see --help).
  std::string tokens_file;         // Empty: generate an admin token.
  std::string token_out;  // The generated token's file; empty: tokenPathForPort(admin port).
  std::string grpc_tls_cert;
  std::string grpc_tls_key;
  std::string grpc_tls_client_ca;
  std::string web_root;             // Directory of the static page; empty: the built-in default.
  std::string instance_name;        // What a fleet relay calls this daemon; empty: the host.
  bool http_anonymous_read = true;  // HTTP reads (and the page) without a token.
  std::string log_format = "text";
  std::string audit_file;     // Empty: no audit file.
  int probe_interval_s = 0;   // 0: no liveness probes.
  int holder_interval_s = 0;  // 0: no holder lookups.
  // A new node may take an UNRESPONSIVE node's name.
  bool takeover_unresponsive = registry::RegistryOptions{}.takeover_unresponsive;
  int evict_unresponsive_after_s = 0;  // 0: never evict automatically.
  size_t history_size = registry::RegistryOptions{}.history_size;
  size_t max_nodes = registry::RegistryOptions{}.max_nodes;
  size_t max_watchers = 1024;
  int drain_timeout_ms = 500;        // What a stop gives admin calls and streams to finish.
  bool revisions_from_clock = true;  // Tests turn this off to see revisions 1, 2, 3...
};

struct ParseResult {
  enum class Kind { Run, Usage, HelpGnu, Version, Error } kind = Kind::Run;
  Options options;
  std::string error;  // Kind::Error: one line for stderr.
};

/// Parses argv (without argv[0]); `getenv` supplies ERL_EPMD_PORT, ERL_EPMD_ADDRESS,
/// ERL_EPMD_RELAXED_COMMAND_CHECK and the EPMDX_* variables (environmentVariables()).
/// The command line wins over the environment.
ParseResult parseArgs(const std::vector<std::string>& args, const char* (*getenv_fn)(const char*));

/// OTP's usage text followed by the epmdx options.
std::string usageText();

/// Every environment variable parseArgs() reads, in the table's order.
std::vector<std::string> environmentVariables();

}  // namespace epmdx::app
