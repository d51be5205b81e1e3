#include "server/app/options.h"

#include <cstdlib>
#include <functional>
#include <initializer_list>

#include "server/common/result.h"

namespace epmdx::app {
namespace {

// ---- How a value is read and where it goes -------------------------------------------

/// Reads one option's value into Options; returns why it cannot instead. `flag` is the
/// option's name as given ("--history-size"), for the message.
using Setter = std::function<std::optional<std::string>(Options&, const std::string& value,
                                                        const std::string& flag)>;
/// The stored value as --help prints it ("{default}" in a help text).
using Shower = std::function<std::string(const Options&)>;

struct Value {
  Setter set;
  Shower show;
};

template <class T>
using Field = T Options::*;

// atoi semantics, as OTP: leading digits, anything else is 0.
int otpAtoi(const std::string& s) {
  return std::atoi(s.c_str());
}

bool parseSize(const std::string& s, size_t& out) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 12) {
    return false;
  }
  out = std::stoull(s);
  return true;
}

Value text(Field<std::string> f) {
  return {[f](Options& o, const std::string& v, const std::string&) -> std::optional<std::string> {
            o.*f = v;
            return std::nullopt;
          },
          [f](const Options& o) { return o.*f; }};
}

/// A listen address. Given, failing to bind it is an error (see Options::grpc_listen_explicit).
Value listen(Field<std::string> f, Field<bool> given) {
  return {[f, given](Options& o, const std::string& v,
                     const std::string&) -> std::optional<std::string> {
            o.*f = v;
            o.*given = true;
            return std::nullopt;
          },
          [f](const Options& o) { return o.*f; }};
}

Value oneOf(Field<std::string> f, std::initializer_list<const char*> allowed) {
  std::vector<std::string> words(allowed.begin(), allowed.end());
  return {[f, words](Options& o, const std::string& v,
                     const std::string& flag) -> std::optional<std::string> {
            for (const auto& w : words) {
              if (v == w) {
                o.*f = v;
                return std::nullopt;
              }
            }
            std::string list;
            for (size_t i = 0; i < words.size(); ++i) {
              list += (i == 0 ? "" : i + 1 == words.size() ? " or " : ", ") + words[i];
            }
            return flag + " must be " + list;
          },
          [f](const Options& o) { return o.*f; }};
}

Value boolean(Field<bool> f) {
  return {
      [f](Options& o, const std::string& v, const std::string& flag) -> std::optional<std::string> {
        if (v != "true" && v != "false") {
          return flag + " must be true or false";
        }
        o.*f = v == "true";
        return std::nullopt;
      },
      [f](const Options& o) { return std::string(o.*f ? "true" : "false"); }};
}

/// A positive count ("--history-size must be a positive integer").
Value positive(Field<size_t> f) {
  return {
      [f](Options& o, const std::string& v, const std::string& flag) -> std::optional<std::string> {
        size_t n = 0;
        if (!parseSize(v, n) || n == 0) {
          return flag + " must be a positive integer";
        }
        o.*f = n;
        return std::nullopt;
      },
      [f](const Options& o) { return std::to_string(o.*f); }};
}

/// 0 to `max`, in the unit the message names; `why` completes "FLAG must be ...".
Value upTo(Field<int> f, size_t max, std::string why) {
  return {[f, max, why](Options& o, const std::string& v,
                        const std::string& flag) -> std::optional<std::string> {
            size_t n = 0;
            if (!parseSize(v, n) || n > max) {
              return flag + " must be " + why;
            }
            o.*f = static_cast<int>(n);
            return std::nullopt;
          },
          [f](const Options& o) { return std::to_string(o.*f); }};
}

/// NAME=PORT[@ADDRESSES]; NAME of [a-z0-9_-], 1 to 63 characters, not "default".
Result<ClusterConfig, std::string> parseCluster(const std::string& value) {
  ClusterConfig c;
  const auto eq = value.find('=');
  const auto at = value.find('@');
  auto bad = [&value](const std::string& why) {
    return makeErr("--cluster=" + value + ": " + why + " (expected NAME=PORT[@ADDRESSES])");
  };
  if (eq == std::string::npos) {
    return bad("no port");
  }
  c.name = value.substr(0, eq);
  if (c.name.empty() || c.name.size() > 63 ||
      c.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") != std::string::npos) {
    return bad("the name must be 1 to 63 of a-z 0-9 _ -");
  }
  if (c.name == "default") {
    return bad("\"default\" is the cluster of -port");
  }
  const std::string port =
      value.substr(eq + 1, at == std::string::npos ? std::string::npos : at - eq - 1);
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) < 1 ||
      std::stoi(port) > 65535) {
    return bad("the port must be 1 to 65535");
  }
  c.port = static_cast<uint16_t>(std::stoi(port));
  if (at != std::string::npos) {
    c.addresses = value.substr(at + 1);
  }
  return c;
}

Value cluster() {
  return {[](Options& o, const std::string& v, const std::string&) -> std::optional<std::string> {
            auto c = parseCluster(v);
            if (!c.ok()) {
              return c.error();
            }
            for (const auto& other : o.clusters) {
              if (other.name == c.value().name || other.port == c.value().port) {
                return "--cluster=" + v + ": the name and the port must be unique";
              }
            }
            o.clusters.push_back(c.value());
            return std::nullopt;
          },
          {}};
}

/// --names-from / --lookups-from: a directive, checked once the clusters are all known.
Value accessDirective(const char* key) {
  return {[key](Options& o, const std::string& v,
                const std::string& flag) -> std::optional<std::string> {
            o.access.push_back({key, v, flag});
            return std::nullopt;
          },
          {}};
}

// OTP's flags: their values are read as OTP reads them, and any error prints the usage.

Value otpCount(Field<int> f) {
  return {[f](Options& o, const std::string&, const std::string&) -> std::optional<std::string> {
            ++(o.*f);
            return std::nullopt;
          },
          {}};
}

Value otpSwitch(Field<bool> f) {
  return {[f](Options& o, const std::string&, const std::string&) -> std::optional<std::string> {
            o.*f = true;
            return std::nullopt;
          },
          {}};
}

/// atoi, then 1 to `max` (OTP: 0 or garbage prints the usage).
template <class T>
Value otpNumber(Field<T> f, int max) {
  return {
      [f, max](Options& o, const std::string& v, const std::string&) -> std::optional<std::string> {
        const int n = otpAtoi(v);
        if (n <= 0 || n > max) {
          return "";
        }
        o.*f = static_cast<T>(n);
        return std::nullopt;
      },
      {}};
}

Value otpCommand(epmd::ClientCommand command) {
  return {[command](Options& o, const std::string& v,
                    const std::string&) -> std::optional<std::string> {
            o.command = command;
            o.stop_name = v;
            return std::nullopt;
          },
          {}};
}

// ---- The table ------------------------------------------------------------------------

/// Where an option is listed in --help. OTP's sections hold OTP's own text, verbatim.
enum class Section { Regular, DbgExtra, Interactive, Epmdx, Hidden };

/// The words an option takes after its name.
enum class Takes {
  Nothing,
  Value,
  NothingThenEnd,  // OTP's interactive commands: the last argument.
  ValueThenEnd,    // -stop NAME: NAME is the last argument.
};

struct OptionSpec {
  std::vector<std::string> names;  // As typed: "-d", "-debug"; "--grpc-listen".
  const char* env;                 // nullptr: none.
  Section section;
  Takes takes;
  std::string syntax;  // OTP: the value's name ("-port No"); epmdx: --help's left column.
  const char* help;    // OTP: its usage lines verbatim; epmdx: lines, {env} and {default} filled.
  Value value;
};

/// An OTP flag: `value_name` is what the usage text calls its value ("" when it takes none).
OptionSpec otp(std::vector<std::string> names, const char* value_name, Section section, Takes takes,
               const char* env, Value value, const char* help) {
  return {std::move(names), env, section, takes, value_name, help, std::move(value)};
}

/// An epmdx option, "--NAME=METAVAR" in --help.
OptionSpec gnu(const char* name, const char* metavar, const char* env, Value value,
               const char* help) {
  OptionSpec spec{{name}, env, Section::Epmdx, Takes::Value, name, help, std::move(value)};
  spec.syntax += std::string("=") + metavar;
  return spec;
}

/// An epmdx option --help describes in the row before it (--grpc-tls-key with --grpc-tls-cert).
OptionSpec gnuWithTheRowBefore(const char* name, Value value) {
  return {{name}, nullptr, Section::Epmdx, Takes::Value, "", nullptr, std::move(value)};
}

constexpr int kMaxOtpSeconds = 0x7fffffff;

// OTP's order of epmd.c's usage(); -started and -dump are OTP's hidden commands. Then
// epmdx's, in the order --help lists them.
const std::vector<OptionSpec> kOptions = {
    otp({"-address"}, "List", Section::Regular, Takes::Value, "ERL_EPMD_ADDRESS",
        text(&Options::addresses),
        "        Let epmd listen only on the comma-separated list of IP\n"
        "        addresses (and on the loopback interface).\n"),
    otp({"-port"}, "No", Section::Regular, Takes::Value, "ERL_EPMD_PORT",
        otpNumber(&Options::port, 65535),
        "        Let epmd listen to another port than default 4369\n"),
    otp({"-d", "-debug"}, "", Section::Regular, Takes::Nothing, nullptr, otpCount(&Options::debug),
        "        Enable debugging. This will give a log to\n"
        "        the standard error stream. It will shorten\n"
        "        the number of saved used node names to 5.\n"
        "        (epmdx: one debug line per request: its type,\n"
        "        name, result for lookups, and peer.)\n"
        "\n"
        "        If you give more than one debug flag you may\n"
        "        get more debugging information.\n"),
    otp({"-daemon"}, "", Section::Regular, Takes::Nothing, nullptr, otpSwitch(&Options::daemon),
        "        Start epmd detached (as a daemon)\n"),
    otp({"-relaxed_command_check"}, "", Section::Regular, Takes::Nothing,
        "ERL_EPMD_RELAXED_COMMAND_CHECK", otpSwitch(&Options::relaxed),
        "        Allow this instance of epmd to be killed with\n"
        "        epmd -kill even if there are registered nodes.\n"
        "        Also allows forced unregister (epmd -stop).\n"),
    otp({"-systemd"}, "", Section::Regular, Takes::Nothing, nullptr, otpSwitch(&Options::systemd),
        "        Wait for socket from systemd. The option makes sense\n"
        "        when started from .socket unit.\n"),
    otp({"-packet_timeout"}, "Seconds", Section::DbgExtra, Takes::Value, nullptr,
        otpNumber(&Options::packet_timeout, kMaxOtpSeconds),
        "        Set the number of seconds a connection can be\n"
        "        inactive before epmd times out and closes the\n"
        "        connection (default 60).\n\n"),
    otp({"-delay_accept"}, "Seconds", Section::DbgExtra, Takes::Value, nullptr,
        otpNumber(&Options::delay_accept, kMaxOtpSeconds),
        "        To simulate a busy server you can insert a\n"
        "        delay between epmd gets notified about that\n"
        "        a new connection is requested and when the\n"
        "        connections gets accepted.\n\n"),
    otp({"-delay_write"}, "Seconds", Section::DbgExtra, Takes::Value, nullptr,
        otpNumber(&Options::delay_write, kMaxOtpSeconds),
        "        Also a simulation of a busy server. Inserts\n"
        "        a delay before a reply is sent.\n"),  // The section's end: no blank line.
    otp({"-names"}, "", Section::Interactive, Takes::NothingThenEnd, nullptr,
        otpCommand(epmd::ClientCommand::Names),
        "        List names registered with the currently running epmd\n"),
    otp({"-kill"}, "", Section::Interactive, Takes::NothingThenEnd, nullptr,
        otpCommand(epmd::ClientCommand::Kill),
        "        Kill the currently running epmd\n"
        "        (only allowed if -names show empty database or\n"
        "        -relaxed_command_check was given when epmd was started).\n"),
    otp({"-stop"}, "Name", Section::Interactive, Takes::ValueThenEnd, nullptr,
        otpCommand(epmd::ClientCommand::Stop),
        "        Forcibly unregisters a name with epmd\n"
        "        (only allowed if -relaxed_command_check was given when \n"
        "        epmd was started).\n"),
    otp({"-started"}, "", Section::Hidden, Takes::NothingThenEnd, nullptr,
        otpCommand(epmd::ClientCommand::Started), nullptr),
    otp({"-dump"}, "", Section::Hidden, Takes::NothingThenEnd, nullptr,
        otpCommand(epmd::ClientCommand::Dump), nullptr),

    gnu("--grpc-listen", "HOST:PORT", "EPMDX_GRPC_LISTEN",
        listen(&Options::grpc_listen, &Options::grpc_listen_explicit),
        "gRPC admin API, \"off\" to disable\n"
        "({env}, default {default})"),
    gnu("--http-listen", "HOST:PORT", "EPMDX_HTTP_LISTEN",
        listen(&Options::http_listen, &Options::http_listen_explicit),
        "REST/SSE API, metrics and web page, \"off\" to disable\n"
        "({env}, default {default}).\n"
        "An address given here that cannot be bound is an error\n"
        "(exit 1); a taken default only turns that surface off."),
    gnu("--http-allowed-hosts", "LIST", "EPMDX_HTTP_ALLOWED_HOSTS",
        text(&Options::http_allowed_hosts),
        "Host header names the HTTP port answers (comma separated,\n"
        "\"*\" for any; {env}). Default: loopback\n"
        "names on a loopback address, any name otherwise."),
    gnu("--tokens-file", "PATH", "EPMDX_TOKENS_FILE", text(&Options::tokens_file),
        "bearer tokens, one \"TOKEN SCOPE...\" line each (scopes:\n"
        "read, evict); reloaded on SIGHUP ({env}).\n"
        "Without it an admin token is generated at start, or\n"
        "adopted from its file if an earlier run left a valid one."),
    gnu("--token-out", "PATH", "EPMDX_TOKEN_FILE", text(&Options::token_out),
        "the generated admin token's file (mode 0600) ({env},\n"
        "default $XDG_RUNTIME_DIR/epmdx/admin-PORT.token or\n"
        "~/.config/epmdx/admin-PORT.token, PORT the gRPC port, else HTTP).\n"
        "Kept at a clean stop, so a restart on the port adopts it;\n"
        "a daemon publishing its own removes those of stopped daemons"),
    // One row for the three: its syntax names the other two.
    gnu("--grpc-tls-cert", "PEM --grpc-tls-key=PEM [--grpc-tls-client-ca=PEM]", nullptr,
        text(&Options::grpc_tls_cert), "serve gRPC over TLS (mutual TLS with a client CA)"),
    gnuWithTheRowBefore("--grpc-tls-key", text(&Options::grpc_tls_key)),
    gnuWithTheRowBefore("--grpc-tls-client-ca", text(&Options::grpc_tls_client_ca)),
    gnu("--http-anonymous-read", "true|false", nullptr, boolean(&Options::http_anonymous_read),
        "HTTP reads (REST GETs, the SSE watch, the page) without a\n"
        "token; a wrong token is still refused (default {default})"),
    gnu("--web-root", "DIR", "EPMDX_WEB_ROOT", text(&Options::web_root),
        "serve the web page from DIR ({env})"),
    gnu("--instance-name", "NAME", "EPMDX_INSTANCE_NAME", text(&Options::instance_name),
        "what a fleet relay (epmdx-fleet) calls this daemon ({env};\n"
        "default: the host name). Kubernetes: the pod's name"),
    gnu("--log-format", "text|json", "EPMDX_LOG_FORMAT",
        oneOf(&Options::log_format, {"text", "json"}),
        "log line format ({env}, default {default})"),
    gnu("--cluster", "NAME=PORT[@ADDRESSES]", nullptr, cluster(),
        "one more cluster: an epmd port with a name table of its own\n"
        "(repeatable). NAMES, lookups, STOP, KILL and creations are per\n"
        "cluster; nodes of one cluster never find another's. -port is\n"
        "the cluster \"default\". KILL_REQ closes its cluster's port; the\n"
        "daemon exits with the last one. With -systemd, a socket whose\n"
        "FileDescriptorName= is NAME serves that cluster."),
    gnu("--names-from", "[CLUSTER=]RULE", nullptr, accessDirective("names-from"),
        "who may list names (NAMES, DUMP) on a cluster's port;"),
    gnu("--lookups-from", "[CLUSTER=]RULE", nullptr, accessDirective("lookups-from"),
        "who may resolve names (PORT_PLEASE2). RULE: any (default, as\n"
        "OTP), loopback, or CIDRs (\"loopback,10.0.0.0/8,fd00::/8\").\n"
        "Without CLUSTER= the default cluster, \"*=\" every cluster.\n"
        "Refused requests are closed without a reply, as OTP refuses.\n"
        "Registrations stay local-only whatever the rule. Repeatable."),
    gnu("--access-file", "PATH", "EPMDX_ACCESS_FILE", text(&Options::access_file),
        "the same directives, one per line (\"names-from=loopback\"),\n"
        "re-read on SIGHUP; they follow the command line's\n"
        "({env})"),
    gnu("--probe-interval", "SECONDS", nullptr,
        upTo(&Options::probe_interval_s, 3600, "a number of seconds from 0 (off) to 3600"),
        "probe every node's VM this often (0, the default: off): one\n"
        "empty distribution packet the VM itself must answer, which\n"
        "logs nothing on the node; Node.health, HEALTH_CHANGED events"),
    gnu("--holder-interval", "SECONDS", nullptr,
        upTo(&Options::holder_interval_s, 3600, "a number of seconds from 0 (off) to 3600"),
        "look up who holds each registration this often (0, the\n"
        "default: off): pid, user, command line, state, through\n"
        "sock_diag and /proc; Node.holder"),
    gnu("--takeover-unresponsive", "true|false", nullptr, boolean(&Options::takeover_unresponsive),
        "ALIVE2 for a name whose node is UNRESPONSIVE evicts it (reason\n"
        "taken_over) and registers the newcomer (default {default}: OTP's\n"
        "duplicate-name refusal). Needs --probe-interval."),
    gnu("--evict-unresponsive-after", "SECONDS", nullptr,
        upTo(&Options::evict_unresponsive_after_s, 7 * 86400, "a number of seconds (0: off)"),
        "evict a node UNRESPONSIVE for this long (reason auto_evicted;\n"
        "0, the default: never). Needs --probe-interval."),
    gnu("--audit-file", "PATH", "EPMDX_AUDIT_FILE", text(&Options::audit_file),
        "append every eviction (by the API, an automatic eviction of\n"
        "an unresponsive node, a takeover by a newcomer), hold, lift\n"
        "and hold expiry to PATH, one JSON line each\n"
        "(epmdx.v1.AuditRecord; {env})"),
    gnu("--history-size", "N", nullptr, positive(&Options::history_size),
        "events kept for watchers to resume from (default {default})"),
    gnu("--max-nodes", "N", nullptr, positive(&Options::max_nodes),
        "most registrations at once (default {default})"),
    gnu("--max-watchers", "N", nullptr, positive(&Options::max_watchers),
        "most concurrent watch streams per API (default {default})"),
    gnu("--drain-timeout", "MS", "EPMDX_DRAIN_TIMEOUT",
        upTo(&Options::drain_timeout_ms, 600000, "a number of milliseconds from 0 to 600000"),
        "how long a stop gives admin calls and watch streams to end\n"
        "before cancelling them, in ms ({env}, default {default})"),
};

const OptionSpec* findOption(const std::string& name) {
  for (const auto& spec : kOptions) {
    for (const auto& n : spec.names) {
      if (n == name) {
        return &spec;
      }
    }
  }
  return nullptr;
}

// ---- Parsing --------------------------------------------------------------------------

/// What one step of parsing decided: go on (Run), or stop with this result.
struct Outcome {
  ParseResult::Kind kind = ParseResult::Kind::Run;
  std::string error;
};

Outcome usage() {
  return {ParseResult::Kind::Usage, {}};
}
Outcome failure(std::string msg) {
  return {ParseResult::Kind::Error, std::move(msg)};
}

/// The environment, before the command line (which wins). OTP's variables count when set,
/// even empty, as OTP reads them; epmdx's when set and not empty.
Outcome applyEnvironment(Options& o, const char* (*getenv_fn)(const char*)) {
  for (const auto& spec : kOptions) {
    const char* v = spec.env == nullptr ? nullptr : getenv_fn(spec.env);
    const bool otp = spec.section != Section::Epmdx;
    if (v == nullptr || (!otp && *v == '\0')) {
      continue;
    }
    if (auto err = spec.value.set(o, v, spec.names.front())) {
      return failure(otp ? std::string("invalid ") + spec.env + ": " + v
                         : std::string(spec.env) + ": " + *err);
    }
  }
  // An address from the environment is "given" only when it is not the default (images set
  // the default explicitly, and a taken default port only turns that surface off).
  const Options defaults;
  o.grpc_listen_explicit = o.grpc_listen != defaults.grpc_listen;
  o.http_listen_explicit = o.http_listen != defaults.http_listen;
  return {};
}

/// An OTP flag at args[i]; advances i past its value.
Outcome parseOtpFlag(const std::vector<std::string>& args, size_t& i, Options& o) {
  const OptionSpec* spec = findOption(args[i]);
  if (spec == nullptr || spec->section == Section::Epmdx) {
    return usage();  // OTP: an unknown argument (including -help) prints usage, exit 1.
  }
  const size_t left = args.size() - i - 1;  // Words after this one.
  std::string value;
  switch (spec->takes) {
    case Takes::Nothing:
      break;
    case Takes::Value:
      if (left == 0) {
        return usage();
      }
      value = args[++i];
      break;
    case Takes::NothingThenEnd:
      if (left != 0) {
        return usage();  // Interactive commands must be the last argument.
      }
      break;
    case Takes::ValueThenEnd:
      if (left != 1) {
        return usage();
      }
      value = args[++i];
      break;
  }
  return spec->value.set(o, value, args[i]) ? usage() : Outcome{};
}

/// A GNU long option at args[i] ("--key=value" or "--key value"); advances i past its value.
Outcome parseLongOption(const std::vector<std::string>& args, size_t& i, Options& o) {
  std::string key = args[i];
  std::string value;
  const auto eq = key.find('=');
  if (eq != std::string::npos) {
    value = key.substr(eq + 1);
    key.erase(eq);
  }
  // An unknown name is reported as such, before its value is looked for: `--bogus`
  // alone is not an option that "needs a value".
  const OptionSpec* spec = findOption(key);
  if (spec == nullptr || spec->section != Section::Epmdx) {
    return failure("unknown option " + key + " (see epmdx --help)");
  }
  if (eq == std::string::npos) {
    if (i + 1 == args.size()) {
      return failure("option " + key + " needs a value");
    }
    value = args[++i];
  }
  if (auto err = spec->value.set(o, value, key)) {
    return failure(*err);
  }
  return {};
}

/// What no single option can check: the options that need each other, and the access
/// directives against the clusters configured.
Outcome checkTogether(const Options& o) {
  if ((o.takeover_unresponsive || o.evict_unresponsive_after_s > 0) && o.probe_interval_s == 0) {
    return failure(std::string(o.takeover_unresponsive ? "--takeover-unresponsive"
                                                       : "--evict-unresponsive-after") +
                   " needs --probe-interval (health comes from the probes)");
  }
  for (const auto& c : o.clusters) {
    if (c.port == o.port && o.port != 0) {
      return failure("--cluster=" + c.name + ": port " + std::to_string(c.port) +
                     " is the default cluster's (-port)");
    }
  }
  std::vector<std::string> names{"default"};
  for (const auto& c : o.clusters) {
    names.push_back(c.name);
  }
  if (auto built = loadAccessPolicies(names, o.access, o.access_file); !built.ok()) {
    return failure(built.error());
  }
  if (o.grpc_tls_cert.empty() != o.grpc_tls_key.empty()) {
    return failure("--grpc-tls-cert and --grpc-tls-key go together");
  }
  return {};
}

// ---- --help ---------------------------------------------------------------------------

constexpr const char* kOtpSynopsis =
    R"(usage: epmd [-d|-debug] [DbgExtra...] [-address List]
            [-port No] [-daemon] [-relaxed_command_check]
       epmd [-d|-debug] [-port No] [-names|-kill|-stop name]

See the Erlang epmd manual page for info about the usage.
)";

constexpr size_t kHelpColumn = 30;  // Where an epmdx option's help starts.

std::string replaceAll(std::string s, const std::string& from, const std::string& to) {
  for (auto at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
  return s;
}

/// OTP's entry: each name (with its value's name), then OTP's lines.
void renderOtp(const OptionSpec& spec, std::string& out) {
  for (const auto& name : spec.names) {
    out += "    " + name + (spec.syntax.empty() ? "" : " " + spec.syntax) + "\n";
  }
  out += spec.help;
}

/// An epmdx entry: the syntax, then the help in a column (under the syntax when it is too
/// wide to share its line), with the environment variable and the default filled in.
void renderEpmdx(const OptionSpec& spec, std::string& out) {
  if (spec.syntax.empty()) {
    return;  // Described by the entry before it (--grpc-tls-key with --grpc-tls-cert).
  }
  std::string help = spec.help == nullptr ? "" : spec.help;
  help = replaceAll(help, "{env}", spec.env == nullptr ? "" : spec.env);
  if (spec.value.show) {
    help = replaceAll(help, "{default}", spec.value.show(Options{}));
  }
  std::string line = "    " + spec.syntax;
  size_t start = 0;
  while (start < help.size()) {
    const size_t nl = help.find('\n', start);
    const std::string text = help.substr(start, nl == std::string::npos ? nl : nl - start);
    if (line.size() >= kHelpColumn) {
      out += line + "\n";
      line.clear();
    }
    line.resize(kHelpColumn, ' ');
    out += line + text + "\n";
    line.clear();
    start = nl == std::string::npos ? help.size() : nl + 1;
  }
  if (!line.empty()) {
    out += line + "\n";
  }
}

void renderSection(Section section, const char* title, std::string& out) {
  out += std::string("\n") + title + "\n";
  for (const auto& spec : kOptions) {
    if (spec.section == section) {
      section == Section::Epmdx ? renderEpmdx(spec, out) : renderOtp(spec, out);
    }
  }
}

}  // namespace

ParseResult parseArgs(const std::vector<std::string>& args, const char* (*getenv_fn)(const char*)) {
  ParseResult r;
  auto decided = [&r](Outcome outcome) {
    r.kind = outcome.kind;
    r.error = std::move(outcome.error);
    return r.kind != ParseResult::Kind::Run;
  };
  if (decided(applyEnvironment(r.options, getenv_fn))) {
    return r;
  }
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "--version") {
      r.kind = a == "--help" ? ParseResult::Kind::HelpGnu : ParseResult::Kind::Version;
      return r;
    }
    const bool gnu = a.rfind("--", 0) == 0;
    if (decided(gnu ? parseLongOption(args, i, r.options) : parseOtpFlag(args, i, r.options))) {
      return r;
    }
  }
  decided(checkTogether(r.options));
  return r;
}

std::string usageText() {
  std::string out = kOtpSynopsis;
  renderSection(Section::Regular, "Regular options", out);
  renderSection(Section::DbgExtra, "DbgExtra options", out);
  renderSection(Section::Interactive, "Interactive options", out);
  renderSection(Section::Epmdx,
                "epmdx options (GNU long form; an environment variable shown sets the same)", out);
  out += "    --help, --version\n";
  return out;
}

std::vector<std::string> environmentVariables() {
  std::vector<std::string> out;
  for (const auto& spec : kOptions) {
    if (spec.env != nullptr) {
      out.emplace_back(spec.env);
    }
  }
  return out;
}

}  // namespace epmdx::app
