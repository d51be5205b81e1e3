// epmdxctl: the command-line client of the epmdx admin API (gRPC), for people and scripts,
// in the manner of kubectl and etcdctl. `epmdxctl --help` and `epmdxctl COMMAND --help`
// describe everything; README.md ("### epmdxctl") has examples.
//
// Exit codes: 0 ok, 1 other error, 2 usage, 3 not found, 4 precondition failed,
// 5 not authorized (no/unknown token or missing scope), 6 daemon unavailable, 7 not a fleet
// relay (`sources`, --source or --partial=abort sent to a daemon).

#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "ctl/commands.h"
#include "ctl/completion.h"
#include "ctl/connection.h"
#include "ctl/server_target.h"
#include "ctl/sources.h"
#include "ctl/status.h"
#include "ctl/token_source.h"
#include "ctl/watch.h"

namespace {

using namespace epmdx::ctl;

const std::vector<std::string> kListFormats = {"table", "wide", "json", "yaml", "names"};
const std::vector<std::string> kWatchFormats = {"text", "json", "yaml"};
const std::vector<std::string> kEvictFormats = {"text", "json", "yaml"};
const std::vector<std::string> kPartialModes = {"warn", "abort"};

std::string joined(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) {
    out += (out.empty() ? "" : ", ") + w;
  }
  return out;
}

// A usage error that names the allowed values: "-o: "xml" is not one of table, wide, ...".
CLI::Validator oneOf(const std::vector<std::string>& allowed) {
  return CLI::Validator(
      [allowed](std::string& value) -> std::string {
        // "-o=json": CLI11 keeps the '=' of a short option; epmdxctl always accepted it.
        if (value.size() > 1 && value[0] == '=') {
          value.erase(0, 1);
        }
        for (const auto& a : allowed) {
          if (value == a) {
            return "";
          }
        }
        return "\"" + value + "\" is not one of " + joined(allowed);
      },
      "");
}

CLI::Option* addOutput(CLI::App* cmd, std::string& target, const std::vector<std::string>& allowed,
                       const std::string& what) {
  std::string names;
  for (const auto& a : allowed) {
    names += (names.empty() ? "" : "|") + a;
  }
  return cmd->add_option("-o,--output", target, what)
      ->type_name(names)
      ->transform(oneOf(allowed))  // transform: it may drop the '=' of "-o=json".
      ->capture_default_str();
}

const char* getenvFn(const char* name) {
  return std::getenv(name);
}

struct Args {
  ConnectOptions connect;
  std::string token;
  std::string token_file;
  // list, get
  std::string output = "table";
  std::string partial = "warn";
  bool no_headers = false;
  bool list_watch = false;
  std::string name;
  // watch
  std::optional<uint64_t> after;
  bool initial = false;
  std::string watch_output = "text";
  // evict
  std::optional<uint64_t> registration_id;
  std::string reason;
  std::string evict_output = "text";
  std::string hold;  // "10s", "5m", "1h", "30"
  // events
  uint32_t limit = 0;
  // completion
  std::string shell;
};

/// "90", "90s", "5m", "2h", "1d" as seconds; nullopt when malformed.
std::optional<uint32_t> parseDuration(const std::string& text) {
  if (text.empty()) {
    return std::nullopt;
  }
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) {
    ++digits;
  }
  if (digits == 0 || digits > 9 || text.size() - digits > 1) {
    return std::nullopt;
  }
  uint64_t n = std::stoull(text.substr(0, digits));
  const char unit = digits < text.size() ? text[digits] : 's';
  switch (unit) {
    case 's':
      break;
    case 'm':
      n *= 60;
      break;
    case 'h':
      n *= 3600;
      break;
    case 'd':
      n *= 86400;
      break;
    default:
      return std::nullopt;
  }
  if (n > UINT32_MAX) {
    return std::nullopt;
  }
  return static_cast<uint32_t>(n);
}

int usageError(const std::string& what, const std::string& command) {
  std::fprintf(stderr, "epmdxctl: %s\nRun 'epmdxctl%s --help' for usage.\n", what.c_str(),
               command.empty() ? "" : (" " + command).c_str());
  return ExitUsage;
}

std::string parsedCommand(const CLI::App& app) {
  const auto subs = app.get_subcommands();
  return subs.empty() ? "" : subs.front()->get_name();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "epmdxctl: lists, watches and evicts the nodes registered with an epmdx daemon, or with "
      "the daemons a fleet relay (epmdx-fleet) follows, over its gRPC admin API.",
      "epmdxctl"};
  app.set_version_flag("--version", std::string("epmdxctl ") + EPMDXCTL_VERSION);
  app.fallthrough();  // Global options may follow the command: `epmdxctl list --server=...`.
  app.require_subcommand(0, 1);
  app.footer(
      "Exit codes: 0 ok, 1 other error, 2 usage, 3 not found, 4 precondition failed,\n"
      "5 not authorized, 6 daemon unavailable, 7 not a fleet relay.\n"
      "Token: --token, --token-file, EPMDX_TOKEN, EPMDX_TOKEN_FILE, else the file the daemon\n"
      "on --server's port writes: $XDG_RUNTIME_DIR/epmdx/admin-PORT.token, else\n"
      "~/.config/epmdx/admin-PORT.token.");
  Args a;
  a.connect.server = "127.0.0.1:4370";
  app.add_option("--server", a.connect.server,
                 "gRPC admin address HOST[:PORT] (no port: 4370; IPv6 as [::1]:4370)")
      ->envname("EPMDX_SERVER")
      ->capture_default_str();
  auto* token = app.add_option("--token", a.token, "bearer token (else EPMDX_TOKEN)");
  auto* token_file = app.add_option("--token-file", a.token_file,
                                    "file holding the bearer token (else EPMDX_TOKEN_FILE)");
  token->excludes(token_file);
  app.add_option("--cluster", a.connect.cluster,
                 "the cluster (epmd port) to address: list/watch show only it, get/evict look "
                 "in it (default: all for list/watch, \"default\" for get/evict)")
      ->envname("EPMDX_CLUSTER");
  app.add_option("--source", a.connect.source,
                 "a fleet relay's source (epmdxctl sources): list/watch/events/holds/clusters "
                 "show only its nodes, get/evict/lift look in it (default: every source; "
                 "get/evict/lift: the one that has the name)")
      ->envname("EPMDX_SOURCE");
  app.add_option("--tls-ca", a.connect.tls_ca, "use TLS, trusting this CA (PEM)");
  auto* tls_cert =
      app.add_option("--tls-cert", a.connect.tls_cert, "client certificate for mutual TLS (PEM)");
  auto* tls_key = app.add_option("--tls-key", a.connect.tls_key, "its private key (PEM)");
  tls_cert->needs(tls_key);
  tls_key->needs(tls_cert);
  app.add_option("--timeout", a.connect.timeout_s, "seconds per call (watch streams have none)")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();

  auto* list = app.add_subcommand("list", "every registered node");
  addOutput(list, a.output, kListFormats, "output format");
  list->add_flag("--no-headers", a.no_headers, "no header row (table, wide)");
  list->add_flag("-w,--watch", a.list_watch,
                 "after the list, print every change (tables gain an EVENT column)");
  list->add_option("--partial", a.partial,
                   "a fleet relay that cannot reach a source: warn (list its last known nodes, "
                   "marked stale, and say so on stderr) or abort (fail, exit 6)")
      ->type_name("warn|abort")
      ->transform(oneOf(kPartialModes))
      ->capture_default_str();

  auto* get = app.add_subcommand("get", "one node");
  get->add_option("NAME", a.name, "the node's epmd name (the part before '@')")->required();
  addOutput(get, a.output, kListFormats, "output format");
  get->add_flag("--no-headers", a.no_headers, "no header row (table, wide)");

  auto* watch = app.add_subcommand("watch", "follow changes; resumes across reconnects");
  auto* after = watch->add_option("--after", a.after, "start after this revision");
  auto* initial = watch->add_flag("--initial", a.initial, "print the current nodes first");
  after->excludes(initial);
  addOutput(watch, a.watch_output, kWatchFormats, "output format");

  auto* evict = app.add_subcommand("evict", "close the node's epmd connection: the name is free");
  evict->add_option("NAME", a.name, "the node's epmd name")->required();
  evict->add_option("--if-registration", a.registration_id,
                    "only if the name is still held by this registration id");
  evict->add_option("--reason", a.reason, "why (in the daemon's event and log)");
  evict->add_option("--hold", a.hold,
                    "keep the name reserved this long (10s, 5m, 2h): the evicted node's own "
                    "re-registration is refused until the hold ends or is lifted");
  addOutput(evict, a.evict_output, kEvictFormats, "output format");

  auto* holds = app.add_subcommand("holds", "the names reserved after evictions");
  addOutput(holds, a.output, kListFormats, "output format");
  holds->add_flag("--no-headers", a.no_headers, "no header row (table, wide)");

  auto* lift = app.add_subcommand("lift", "end a hold: the name may register again at once");
  lift->add_option("NAME", a.name, "the held name")->required();
  lift->add_option("--reason", a.reason, "why (in the daemon's event, log and audit file)");
  addOutput(lift, a.evict_output, kEvictFormats, "output format");

  auto* events = app.add_subcommand("events", "the recent changes the daemon still holds");
  events->add_option("--limit", a.limit, "at most this many, the newest (0: 200)")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  addOutput(events, a.output, kListFormats, "output format");
  events->add_flag("--no-headers", a.no_headers, "no header row (table, wide)");

  auto* health = app.add_subcommand("health", "SERVING / NOT_SERVING (grpc.health.v1)");

  auto* clusters = app.add_subcommand("clusters", "the daemon's clusters (epmd ports)");
  addOutput(clusters, a.output, kListFormats, "output format");
  clusters->add_flag("--no-headers", a.no_headers, "no header row (table, wide)");

  auto* sources = app.add_subcommand(
      "sources", "a fleet relay's sources: the epmdx daemons it follows, and their state");
  addOutput(sources, a.output, kListFormats, "output format");
  sources->add_flag("--no-headers", a.no_headers,
                    "no header row nor discovery lines (table, wide)");

  auto* completion = app.add_subcommand("completion", "print a shell completion script");
  completion->add_option("SHELL", a.shell, "bash")->required()->check(oneOf({"bash"}));

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help (exit 0, stdout) or --version.
  } catch (const CLI::ExtrasError& e) {
    const std::string command = parsedCommand(app);
    if (command.empty() && !app.remaining().empty()) {
      return usageError("unknown command \"" + app.remaining().front() +
                            "\" (commands: list, get, watch, evict, holds, lift, events, "
                            "health, clusters, sources, completion)",
                        "");
    }
    return usageError(e.what(), command);
  } catch (const CLI::ParseError& e) {
    return usageError(e.what(), parsedCommand(app));
  }
  if (app.get_subcommands().empty()) {
    return usageError(
        "a command is required (list, get, watch, evict, holds, lift, events, health, "
        "clusters, sources, completion)",
        "");
  }

  if (*completion) {
    CompletionHints hints;
    hints.outputs = {
        {"list", kListFormats},     {"get", kListFormats},    {"watch", kWatchFormats},
        {"evict", kEvictFormats},   {"holds", kListFormats},  {"lift", kEvictFormats},
        {"clusters", kListFormats}, {"events", kListFormats}, {"sources", kListFormats}};
    hints.file_options = {"--token-file", "--tls-ca", "--tls-cert", "--tls-key"};
    hints.node_commands = {"get", "evict"};
    hints.positionals = {{"completion", {"bash"}}};
    hints.option_values = {{"--partial", kPartialModes}};
    hints.option_commands = {{"--source", "sources -o names"}};
    emit(bashCompletion(app, hints));
    return ExitOk;
  }

  std::optional<uint32_t> hold_seconds;
  if (*evict && !a.hold.empty()) {
    hold_seconds = parseDuration(a.hold);
    if (!hold_seconds) {
      return usageError("--hold must be a duration: 90, 90s, 5m, 2h or 1d", "evict");
    }
  }

  // Before the token is looked for: "--server=localhost" finds the token file of port 4370.
  a.connect.server = withDefaultPort(a.connect.server);
  TokenSource tokens = TokenSource::resolve(a.token, a.token_file, getenvFn, a.connect.server);
  if (!tokens.load() && tokens.explicitFile()) {
    // The user named this file: not being able to read it is the error, not what the daemon
    // would say to a request without a token.
    std::fprintf(stderr, "epmdxctl: %s\n", tokens.error().c_str());
    return ExitNotAuthorized;
  }
  std::string error;
  auto conn = Connection::open(a.connect, std::move(tokens), error);
  if (!conn) {
    std::fprintf(stderr, "epmdxctl: %s\n", error.c_str());
    return ExitError;
  }
  const Format format = parseFormat(a.output).value_or(Format::Table);
  if (*sources) {
    return listSources(*conn, format, !a.no_headers);
  }
  // A daemon ignores what only a relay reads: without this check `--source=pod-1 evict app`
  // would evict the daemon's own app, and `list --source=pod-1` list every node.
  const bool partial_abort = *list && a.partial == "abort";
  if ((!a.connect.source.empty() && !*health) || partial_abort) {
    const int ok = requireRelay(*conn, a.connect.source.empty() ? "--partial=abort" : "--source");
    if (ok != ExitOk) {
      return ok;
    }
  }
  if (*list) {
    ListArgs list_args{format, !a.no_headers, a.list_watch};
    list_args.partial = partial_abort ? epmdx::v1::PARTIAL_ABORT : epmdx::v1::PARTIAL_WARN;
    return listNodes(*conn, list_args);
  }
  if (*get) {
    return getNode(*conn, a.name, format, !a.no_headers);
  }
  if (*watch) {
    const WatchFormat wf = a.watch_output == "json"   ? WatchFormat::Json
                           : a.watch_output == "yaml" ? WatchFormat::Yaml
                                                      : WatchFormat::Text;
    return watchEvents(*conn, WatchStart{a.after, a.initial}, wf);
  }
  if (*evict) {
    const Format ef = a.evict_output == "json"   ? Format::Json
                      : a.evict_output == "yaml" ? Format::Yaml
                                                 : Format::Table;
    return evictNode(*conn, a.name, a.registration_id, a.reason, ef, hold_seconds.value_or(0));
  }
  if (*holds) {
    return listHolds(*conn, format, !a.no_headers);
  }
  if (*lift) {
    const Format lf = a.evict_output == "json"   ? Format::Json
                      : a.evict_output == "yaml" ? Format::Yaml
                                                 : Format::Table;
    return liftHold(*conn, a.name, a.reason, lf);
  }
  if (*events) {
    return listEvents(*conn, a.limit, format, !a.no_headers);
  }
  if (*health) {
    return epmdx::ctl::health(*conn);
  }
  if (*clusters) {
    return listClusters(*conn, format, !a.no_headers);
  }
  return ExitUsage;
}
