#include "server/app/options.h"

#include <cstdlib>

#include "server/common/result.h"

namespace epmdx::app {
namespace {

// The GNU long options (those taking a value); parseArgs() handles each below.
bool isLongOption(const std::string& key) {
  static const char* const kKnown[] = {"grpc-listen",
                                       "http-listen",
                                       "cluster",
                                       "names-from",
                                       "lookups-from",
                                       "access-file",
                                       "audit-file",
                                       "probe-interval",
                                       "takeover-unresponsive",
                                       "evict-unresponsive-after",
                                       "holder-interval",
                                       "http-allowed-hosts",
                                       "tokens-file",
                                       "token-out",
                                       "grpc-tls-cert",
                                       "grpc-tls-key",
                                       "grpc-tls-client-ca",
                                       "web-root",
                                       "http-anonymous-read",
                                       "log-format",
                                       "history-size",
                                       "max-nodes",
                                       "max-watchers"};
  for (const char* k : kKnown) {
    if (key == k) {
      return true;
    }
  }
  return false;
}

// atoi semantics, as OTP: leading digits, anything else is 0.
int otpAtoi(const std::string& s) {
  return std::atoi(s.c_str());
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

bool parseSize(const std::string& s, size_t& out) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 12) {
    return false;
  }
  out = std::stoull(s);
  return true;
}

}  // namespace

ParseResult parseArgs(const std::vector<std::string>& args, const char* (*getenv_fn)(const char*)) {
  ParseResult r;
  Options& o = r.options;
  auto usage = [&r]() {
    r.kind = ParseResult::Kind::Usage;
    return r;
  };
  auto fail = [&r](std::string msg) {
    r.kind = ParseResult::Kind::Error;
    r.error = std::move(msg);
    return r;
  };

  if (const char* p = getenv_fn("ERL_EPMD_PORT"); p != nullptr) {
    const int port = otpAtoi(p);
    if (port <= 0 || port > 65535) {
      return fail(std::string("invalid ERL_EPMD_PORT: ") + p);
    }
    o.port = static_cast<uint16_t>(port);
  }
  if (const char* a = getenv_fn("ERL_EPMD_ADDRESS"); a != nullptr) {
    o.addresses = a;
  }
  o.relaxed = getenv_fn("ERL_EPMD_RELAXED_COMMAND_CHECK") != nullptr;
  auto envOr = [&](const char* name, std::string& field) {
    if (const char* v = getenv_fn(name); v != nullptr && *v != '\0') {
      field = v;
    }
  };
  envOr("EPMDX_GRPC_LISTEN", o.grpc_listen);
  envOr("EPMDX_HTTP_LISTEN", o.http_listen);
  o.grpc_listen_explicit = o.grpc_listen != kDefaultGrpcListen;
  o.http_listen_explicit = o.http_listen != kDefaultHttpListen;
  envOr("EPMDX_HTTP_ALLOWED_HOSTS", o.http_allowed_hosts);
  envOr("EPMDX_ACCESS_FILE", o.access_file);
  envOr("EPMDX_AUDIT_FILE", o.audit_file);
  envOr("EPMDX_TOKENS_FILE", o.tokens_file);
  envOr("EPMDX_LOG_FORMAT", o.log_format);
  envOr("EPMDX_WEB_ROOT", o.web_root);
  envOr("EPMDX_TOKEN_FILE", o.token_out);

  const size_t n = args.size();
  for (size_t i = 0; i < n; ++i) {
    const std::string& a = args[i];
    const bool last = i + 1 == n;
    if (a == "-d" || a == "-debug") {
      ++o.debug;
    } else if (a == "-packet_timeout" || a == "-delay_accept" || a == "-delay_write") {
      if (last) {
        return usage();
      }
      const int v = otpAtoi(args[++i]);
      if (v <= 0) {
        return usage();  // OTP: 0 or missing prints usage.
      }
      (a == "-packet_timeout" ? o.packet_timeout
       : a == "-delay_accept" ? o.delay_accept
                              : o.delay_write) = v;
    } else if (a == "-daemon") {
      o.daemon = true;
    } else if (a == "-relaxed_command_check") {
      o.relaxed = true;
    } else if (a == "-systemd") {
      o.systemd = true;
    } else if (a == "-address") {
      if (last) {
        return usage();
      }
      o.addresses = args[++i];
    } else if (a == "-port") {
      if (last) {
        return usage();
      }
      const int v = otpAtoi(args[++i]);
      if (v <= 0 || v > 65535) {
        return usage();
      }
      o.port = static_cast<uint16_t>(v);
    } else if (a == "-names" || a == "-started" || a == "-dump" || a == "-kill") {
      if (!last) {
        return usage();  // Interactive commands must be the last argument.
      }
      o.command = a == "-names"     ? epmd::ClientCommand::Names
                  : a == "-started" ? epmd::ClientCommand::Started
                  : a == "-dump"    ? epmd::ClientCommand::Dump
                                    : epmd::ClientCommand::Kill;
    } else if (a == "-stop") {
      if (i + 2 != n) {
        return usage();
      }
      o.command = epmd::ClientCommand::Stop;
      o.stop_name = args[++i];
    } else if (a == "--help") {
      r.kind = ParseResult::Kind::HelpGnu;
      return r;
    } else if (a == "--version") {
      r.kind = ParseResult::Kind::Version;
      return r;
    } else if (a.rfind("--", 0) == 0) {
      std::string key = a.substr(2);
      std::string value;
      const auto eq = key.find('=');
      if (eq != std::string::npos) {
        value = key.substr(eq + 1);
        key = key.substr(0, eq);
      }
      // An unknown name is reported as such, before its value is looked for: `--bogus`
      // alone is not an option that "needs a value".
      if (!isLongOption(key)) {
        return fail("unknown option --" + key + " (see epmdx --help)");
      }
      if (eq != std::string::npos) {
        // --key=value
      } else if (!last) {
        value = args[++i];
      } else {
        return fail("option --" + key + " needs a value");
      }
      if (key == "grpc-listen") {
        o.grpc_listen = value;
        o.grpc_listen_explicit = true;
      } else if (key == "http-listen") {
        o.http_listen = value;
        o.http_listen_explicit = true;
      } else if (key == "cluster") {
        auto c = parseCluster(value);
        if (!c.ok()) {
          return fail(c.error());
        }
        for (const auto& other : o.clusters) {
          if (other.name == c.value().name || other.port == c.value().port) {
            return fail("--cluster=" + value + ": the name and the port must be unique");
          }
        }
        o.clusters.push_back(c.value());
      } else if (key == "names-from" || key == "lookups-from") {
        o.access.push_back({key, value, "--" + key});
      } else if (key == "access-file") {
        o.access_file = value;
      } else if (key == "audit-file") {
        o.audit_file = value;
      } else if (key == "probe-interval") {
        size_t seconds = 0;
        if (!parseSize(value, seconds) || seconds > 3600) {
          return fail("--probe-interval must be a number of seconds from 0 (off) to 3600");
        }
        o.probe_interval_s = static_cast<int>(seconds);
      } else if (key == "takeover-unresponsive") {
        if (value != "true" && value != "false") {
          return fail("--takeover-unresponsive must be true or false");
        }
        o.takeover_unresponsive = value == "true";
      } else if (key == "evict-unresponsive-after") {
        size_t seconds = 0;
        if (!parseSize(value, seconds) || seconds > 7 * 86400) {
          return fail("--evict-unresponsive-after must be a number of seconds (0: off)");
        }
        o.evict_unresponsive_after_s = static_cast<int>(seconds);
      } else if (key == "holder-interval") {
        size_t seconds = 0;
        if (!parseSize(value, seconds) || seconds > 3600) {
          return fail("--holder-interval must be a number of seconds from 0 (off) to 3600");
        }
        o.holder_interval_s = static_cast<int>(seconds);
      } else if (key == "http-allowed-hosts") {
        o.http_allowed_hosts = value;
      } else if (key == "tokens-file") {
        o.tokens_file = value;
      } else if (key == "token-out") {
        o.token_out = value;
      } else if (key == "grpc-tls-cert") {
        o.grpc_tls_cert = value;
      } else if (key == "grpc-tls-key") {
        o.grpc_tls_key = value;
      } else if (key == "grpc-tls-client-ca") {
        o.grpc_tls_client_ca = value;
      } else if (key == "web-root") {
        o.web_root = value;
      } else if (key == "http-anonymous-read") {
        if (value != "true" && value != "false") {
          return fail("--http-anonymous-read must be true or false");
        }
        o.http_anonymous_read = value == "true";
      } else if (key == "log-format") {
        if (value != "text" && value != "json") {
          return fail("--log-format must be text or json");
        }
        o.log_format = value;
      } else if (key == "history-size") {
        if (!parseSize(value, o.history_size) || o.history_size == 0) {
          return fail("--history-size must be a positive integer");
        }
      } else if (key == "max-nodes") {
        if (!parseSize(value, o.max_nodes) || o.max_nodes == 0) {
          return fail("--max-nodes must be a positive integer");
        }
      } else if (key == "max-watchers") {
        if (!parseSize(value, o.max_watchers) || o.max_watchers == 0) {
          return fail("--max-watchers must be a positive integer");
        }
      } else {
        return fail("unknown option --" + key + " (see epmdx --help)");
      }
    } else {
      return usage();  // OTP: an unknown argument (including -help) prints usage, exit 1.
    }
  }
  if ((o.takeover_unresponsive || o.evict_unresponsive_after_s > 0) && o.probe_interval_s == 0) {
    return fail(std::string(o.takeover_unresponsive ? "--takeover-unresponsive"
                                                    : "--evict-unresponsive-after") +
                " needs --probe-interval (health comes from the probes)");
  }
  for (const auto& c : o.clusters) {
    if (c.port == o.port && o.port != 0) {
      return fail("--cluster=" + c.name + ": port " + std::to_string(c.port) +
                  " is the default cluster's (-port)");
    }
  }
  {
    // Check the access directives now, against the clusters configured.
    std::vector<std::string> names{"default"};
    for (const auto& c : o.clusters) {
      names.push_back(c.name);
    }
    auto directives = o.access;
    if (!o.access_file.empty()) {
      auto file = readAccessFile(o.access_file);
      if (!file.ok()) {
        return fail(file.error());
      }
      directives.insert(directives.end(), file.value().begin(), file.value().end());
    }
    if (auto built = buildAccessPolicies(names, directives); !built.ok()) {
      return fail(built.error());
    }
  }
  if (o.grpc_tls_cert.empty() != o.grpc_tls_key.empty()) {
    return fail("--grpc-tls-cert and --grpc-tls-key go together");
  }
  return r;
}

std::string usageText() {
  return
      R"(usage: epmd [-d|-debug] [DbgExtra...] [-address List]
            [-port No] [-daemon] [-relaxed_command_check]
       epmd [-d|-debug] [-port No] [-names|-kill|-stop name]

See the Erlang epmd manual page for info about the usage.

Regular options
    -address List
        Let epmd listen only on the comma-separated list of IP
        addresses (and on the loopback interface).
    -port No
        Let epmd listen to another port than default 4369
    -d
    -debug
        Enable debugging. This will give a log to
        the standard error stream. It will shorten
        the number of saved used node names to 5.
        (epmdx: one debug line per request: its type,
        name, result for lookups, and peer.)

        If you give more than one debug flag you may
        get more debugging information.
    -daemon
        Start epmd detached (as a daemon)
    -relaxed_command_check
        Allow this instance of epmd to be killed with
        epmd -kill even if there are registered nodes.
        Also allows forced unregister (epmd -stop).
    -systemd
        Wait for socket from systemd. The option makes sense
        when started from .socket unit.

DbgExtra options
    -packet_timeout Seconds
        Set the number of seconds a connection can be
        inactive before epmd times out and closes the
        connection (default 60).

    -delay_accept Seconds
        To simulate a busy server you can insert a
        delay between epmd gets notified about that
        a new connection is requested and when the
        connections gets accepted.

    -delay_write Seconds
        Also a simulation of a busy server. Inserts
        a delay before a reply is sent.

Interactive options
    -names
        List names registered with the currently running epmd
    -kill
        Kill the currently running epmd
        (only allowed if -names show empty database or
        -relaxed_command_check was given when epmd was started).
    -stop Name
        Forcibly unregisters a name with epmd
        (only allowed if -relaxed_command_check was given when 
        epmd was started).

epmdx options (GNU long form; each also reads the environment variable shown)
    --grpc-listen=HOST:PORT   gRPC admin API, "off" to disable
                              (EPMDX_GRPC_LISTEN, default 127.0.0.1:4370)
    --http-listen=HOST:PORT   REST/SSE API, metrics and web page, "off" to disable
                              (EPMDX_HTTP_LISTEN, default 127.0.0.1:4371).
                              An address given here that cannot be bound is an error
                              (exit 1); a taken default only turns that surface off.
    --http-allowed-hosts=LIST Host header names the HTTP port answers (comma separated,
                              "*" for any; EPMDX_HTTP_ALLOWED_HOSTS). Default: loopback
                              names on a loopback address, any name otherwise.
    --tokens-file=PATH        bearer tokens, one "TOKEN SCOPE..." line each (scopes:
                              read, evict); reloaded on SIGHUP (EPMDX_TOKENS_FILE).
                              Without it an admin token is generated at start, or
                              adopted from its file if an earlier run left a valid one.
    --token-out=PATH          the generated admin token's file (mode 0600) (EPMDX_TOKEN_FILE,
                              default $XDG_RUNTIME_DIR/epmdx/admin-PORT.token or
                              ~/.config/epmdx/admin-PORT.token, PORT the gRPC port, else HTTP).
                              Kept at a clean stop, so a restart on the port adopts it;
                              a daemon publishing its own removes those of stopped daemons
    --grpc-tls-cert=PEM --grpc-tls-key=PEM [--grpc-tls-client-ca=PEM]
                              serve gRPC over TLS (mutual TLS with a client CA)
    --http-anonymous-read=true|false
                              HTTP reads (REST GETs, the SSE watch, the page) without a
                              token; a wrong token is still refused (default true)
    --web-root=DIR            serve the web page from DIR (EPMDX_WEB_ROOT)
    --log-format=text|json    log line format (EPMDX_LOG_FORMAT, default text)
    --cluster=NAME=PORT[@ADDRESSES]
                              one more cluster: an epmd port with a name table of its own
                              (repeatable). NAMES, lookups, STOP, KILL and creations are per
                              cluster; nodes of one cluster never find another's. -port is
                              the cluster "default". KILL_REQ closes its cluster's port; the
                              daemon exits with the last one. With -systemd, a socket whose
                              FileDescriptorName= is NAME serves that cluster.
    --names-from=[CLUSTER=]RULE
                              who may list names (NAMES, DUMP) on a cluster's port;
    --lookups-from=[CLUSTER=]RULE
                              who may resolve names (PORT_PLEASE2). RULE: any (default, as
                              OTP), loopback, or CIDRs ("loopback,10.0.0.0/8,fd00::/8").
                              Without CLUSTER= the default cluster, "*=" every cluster.
                              Refused requests are closed without a reply, as OTP refuses.
                              Registrations stay local-only whatever the rule. Repeatable.
    --access-file=PATH        the same directives, one per line ("names-from=loopback"),
                              re-read on SIGHUP; they follow the command line's
                              (EPMDX_ACCESS_FILE)
    --probe-interval=SECONDS  probe every node's VM this often (0, the default: off): one
                              empty distribution packet the VM itself must answer, which
                              logs nothing on the node; Node.health, HEALTH_CHANGED events
    --holder-interval=SECONDS look up who holds each registration this often (0, the
                              default: off): pid, user, command line, state, through
                              sock_diag and /proc; Node.holder
    --takeover-unresponsive=true|false
                              ALIVE2 for a name whose node is UNRESPONSIVE evicts it (reason
                              taken_over) and registers the newcomer (default false: OTP's
                              duplicate-name refusal). Needs --probe-interval.
    --evict-unresponsive-after=SECONDS
                              evict a node UNRESPONSIVE for this long (reason auto_evicted;
                              0, the default: never). Needs --probe-interval.
    --audit-file=PATH         append every eviction (by the API, an automatic eviction of
                              an unresponsive node, a takeover by a newcomer), hold, lift
                              and hold expiry to PATH, one JSON line each
                              (epmdx.v1.AuditRecord; EPMDX_AUDIT_FILE)
    --history-size=N          events kept for watchers to resume from (default 16384)
    --max-nodes=N             most registrations at once (default 1000000)
    --max-watchers=N          most concurrent watch streams per API (default 1024)
    --help, --version
)";
}

}  // namespace epmdx::app
