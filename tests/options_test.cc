#include "server/app/options.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "server/registry/registry.h"

namespace epmdx::app {
namespace {

std::map<std::string, std::string> g_env;
const char* fakeEnv(const char* name) {
  auto it = g_env.find(name);
  return it == g_env.end() ? nullptr : it->second.c_str();
}

ParseResult parse(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
  g_env = std::move(env);
  return parseArgs(args, fakeEnv);
}

TEST(Options, OtpFlags) {
  auto r = parse({"-d", "-d", "-port", "4400", "-address", "10.0.0.1,::1", "-daemon",
                  "-relaxed_command_check", "-packet_timeout", "5", "-delay_accept", "2",
                  "-delay_write", "3"});
  ASSERT_EQ(r.kind, ParseResult::Kind::Run);
  EXPECT_EQ(r.options.debug, 2);
  EXPECT_EQ(r.options.port, 4400);
  EXPECT_EQ(r.options.addresses, "10.0.0.1,::1");
  EXPECT_TRUE(r.options.daemon);
  EXPECT_TRUE(r.options.relaxed);
  EXPECT_EQ(r.options.packet_timeout, 5);
  EXPECT_EQ(r.options.delay_accept, 2);
  EXPECT_EQ(r.options.delay_write, 3);
}

TEST(Options, UsageErrorsAsOtp) {
  for (auto args : std::vector<std::vector<std::string>>{{"-port"},
                                                         {"-port", "0"},
                                                         {"-port", "abc"},
                                                         {"-packet_timeout", "0"},
                                                         {"-names", "-port", "1"},
                                                         {"-stop"},
                                                         {"-stop", "a", "b"},
                                                         {"-help"},
                                                         {"-bogus"}}) {
    EXPECT_EQ(parse(args).kind, ParseResult::Kind::Usage) << args[0];
  }
}

TEST(Options, InteractiveCommandsMustBeLast) {
  auto r = parse({"-port", "4400", "-names"});
  ASSERT_EQ(r.kind, ParseResult::Kind::Run);
  EXPECT_EQ(r.options.command, epmd::ClientCommand::Names);
  auto s = parse({"-stop", "foo"});
  EXPECT_EQ(s.options.command, epmd::ClientCommand::Stop);
  EXPECT_EQ(s.options.stop_name, "foo");
  EXPECT_EQ(parse({"-kill"}).options.command, epmd::ClientCommand::Kill);
  EXPECT_EQ(parse({"-dump"}).options.command, epmd::ClientCommand::Dump);
  EXPECT_EQ(parse({"-started"}).options.command, epmd::ClientCommand::Started);
}

TEST(Options, Environment) {
  auto r = parse({}, {{"ERL_EPMD_PORT", "4500"},
                      {"ERL_EPMD_ADDRESS", "127.0.0.1"},
                      {"ERL_EPMD_RELAXED_COMMAND_CHECK", ""},
                      {"EPMDX_GRPC_LISTEN", "0.0.0.0:9000"}});
  EXPECT_EQ(r.options.port, 4500);
  EXPECT_EQ(r.options.addresses, "127.0.0.1");
  EXPECT_TRUE(r.options.relaxed);  // Presence is enough.
  EXPECT_EQ(r.options.grpc_listen, "0.0.0.0:9000");
  // Flags win over the environment.
  EXPECT_EQ(parse({"-port", "4600"}, {{"ERL_EPMD_PORT", "4500"}}).options.port, 4600);
  EXPECT_EQ(parse({}, {{"ERL_EPMD_PORT", "x"}}).kind, ParseResult::Kind::Error);
}

TEST(Options, DeadNamesOptionsAreOffByDefaultAndChecked) {
  const auto d = parse({}).options;
  EXPECT_EQ(d.probe_interval_s, 0);
  EXPECT_EQ(d.holder_interval_s, 0);
  EXPECT_FALSE(d.takeover_unresponsive);
  EXPECT_EQ(d.evict_unresponsive_after_s, 0);
  EXPECT_TRUE(d.audit_file.empty());
  auto r = parse({"--probe-interval=5", "--holder-interval", "10", "--takeover-unresponsive=true",
                  "--evict-unresponsive-after=300", "--audit-file=/tmp/a.jsonl"});
  ASSERT_EQ(r.kind, ParseResult::Kind::Run) << r.error;
  EXPECT_EQ(r.options.probe_interval_s, 5);
  EXPECT_EQ(r.options.holder_interval_s, 10);
  EXPECT_TRUE(r.options.takeover_unresponsive);
  EXPECT_EQ(r.options.evict_unresponsive_after_s, 300);
  EXPECT_EQ(r.options.audit_file, "/tmp/a.jsonl");
  EXPECT_EQ(parse({}, {{"EPMDX_AUDIT_FILE", "/tmp/b"}}).options.audit_file, "/tmp/b");
  // Takeover and automatic eviction act on health: without probes they would never act.
  const auto no_probe = parse({"--takeover-unresponsive=true"});
  EXPECT_EQ(no_probe.kind, ParseResult::Kind::Error);
  EXPECT_NE(no_probe.error.find("--probe-interval"), std::string::npos) << no_probe.error;
  EXPECT_EQ(parse({"--evict-unresponsive-after=10"}).kind, ParseResult::Kind::Error);
  EXPECT_EQ(parse({"--probe-interval=x"}).kind, ParseResult::Kind::Error);
  EXPECT_EQ(parse({"--probe-interval=3601"}).kind, ParseResult::Kind::Error);
  EXPECT_EQ(parse({"--takeover-unresponsive=yes", "--probe-interval=1"}).kind,
            ParseResult::Kind::Error);
}

TEST(Options, GnuLongOptions) {
  auto r = parse({"--grpc-listen=127.0.0.1:1", "--http-listen", "off", "--log-format=json",
                  "--history-size=10", "--tokens-file=/t"});
  ASSERT_EQ(r.kind, ParseResult::Kind::Run);
  EXPECT_EQ(r.options.grpc_listen, "127.0.0.1:1");
  EXPECT_EQ(r.options.http_listen, "off");
  EXPECT_EQ(r.options.log_format, "json");
  EXPECT_EQ(r.options.history_size, 10u);
  EXPECT_EQ(r.options.tokens_file, "/t");
  EXPECT_EQ(parse({"--log-format=xml"}).kind, ParseResult::Kind::Error);
  EXPECT_EQ(parse({"--nope=1"}).kind, ParseResult::Kind::Error);
  EXPECT_EQ(parse({"--history-size=0"}).kind, ParseResult::Kind::Error);
  EXPECT_EQ(parse({"--grpc-tls-cert=a"}).kind, ParseResult::Kind::Error);
  EXPECT_EQ(parse({"--help"}).kind, ParseResult::Kind::HelpGnu);
}

// An unknown long option is called unknown, never "option --bogus needs a value".
TEST(Options, AnUnknownLongOptionIsReportedAsUnknownWithOrWithoutAValue) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--bogus"}, {"--bogus", "x"}, {"--bogus=1"}, {"-port", "1", "--bogus"}}) {
    const auto r = parse(args);
    EXPECT_EQ(r.kind, ParseResult::Kind::Error);
    EXPECT_EQ(r.error, "unknown option --bogus (see epmdx --help)") << args.back();
  }
  // A known option at the end without its value still says so.
  EXPECT_EQ(parse({"--max-nodes"}).error, "option --max-nodes needs a value");
}

// Every option --help lists is known to the parser (so the list of names cannot drift
// from the options handled).
TEST(Options, EveryLongOptionInTheHelpIsKnown) {
  const std::string help = usageText();
  size_t checked = 0;
  for (size_t at = help.find("\n    --"); at != std::string::npos;
       at = help.find("\n    --", at + 1)) {
    const size_t start = at + 7;
    const size_t end = help.find_first_of("=[ \n", start);
    const std::string key = help.substr(start, end - start);
    if (key == "help," || key == "help") {
      continue;
    }
    const auto r = parse({"--" + key});
    EXPECT_EQ(r.error.find("unknown option"), std::string::npos) << key << ": " << r.error;
    ++checked;
  }
  EXPECT_GE(checked, 20u);
}

// The audit file records takeovers and automatic evictions too (api/audit_log.cc): the
// help says so.
TEST(Options, TheAuditFileHelpNamesEverythingTheFileRecords) {
  const std::string help = usageText();
  const auto at = help.find("--audit-file=PATH");
  ASSERT_NE(at, std::string::npos);
  const std::string entry = help.substr(at, help.find("\n    --", at) - at);
  for (const char* what :
       {"eviction", "automatic eviction", "takeover", "hold", "lift", "hold expiry"}) {
    EXPECT_NE(entry.find(what), std::string::npos) << what << " missing from: " << entry;
  }
}

TEST(Options, TokenOutIsPerDaemonUnlessNamed) {
  // Empty: the daemon names the file after its admin port once bound (tokenPathForPort).
  EXPECT_EQ(parse({}, {{"XDG_RUNTIME_DIR", "/run/user/7"}}).options.token_out, "");
  EXPECT_EQ(parse({}, {{"EPMDX_TOKEN_FILE", "/etc/t"}}).options.token_out, "/etc/t");
  EXPECT_EQ(parse({"--token-out=/x/t"}, {{"EPMDX_TOKEN_FILE", "/etc/t"}}).options.token_out,
            "/x/t");
}

// OTP's usage text (erts/epmd/src/epmd.c: usage()), byte for byte, as `epmd -h` prints it;
// epmdx only adds the debug line's last sentence. The options table renders it.
TEST(Options, TheUsageTextStartsWithOtpsByteForByte) {
  const std::string otp =
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

epmdx options)";
  const std::string help = usageText();
  EXPECT_EQ(help.substr(0, otp.size()), otp);
  EXPECT_EQ(help.substr(help.size() - 22), "    --help, --version\n");
}

// The help's two columns: an option's help starts at column 30, under the option when the
// option is too wide to share the line.
TEST(Options, EpmdxHelpLinesKeepTheirColumns) {
  const std::string help = usageText();
  EXPECT_NE(
      help.find("\n    --grpc-listen=HOST:PORT   gRPC admin API, \"off\" to disable\n"
                "                              (EPMDX_GRPC_LISTEN, default 127.0.0.1:4370)\n"),
      std::string::npos);
  EXPECT_NE(help.find("\n    --http-allowed-hosts=LIST Host header names"), std::string::npos);
  EXPECT_NE(help.find("\n    --names-from=[CLUSTER=]RULE\n                              who may"),
            std::string::npos);
  EXPECT_NE(help.find("\n    --grpc-tls-cert=PEM --grpc-tls-key=PEM [--grpc-tls-client-ca=PEM]\n"
                      "                              serve gRPC over TLS"),
            std::string::npos);
}

// The defaults --help prints are the ones in force (written once, in Options and the
// registry's and servers' own option structs).
TEST(Options, TheHelpPrintsTheDefaultsInForce) {
  const Options d;
  EXPECT_EQ(d.history_size, registry::RegistryOptions{}.history_size);
  EXPECT_EQ(d.max_nodes, registry::RegistryOptions{}.max_nodes);
  EXPECT_EQ(d.http_listen, http::HttpOptions{}.listen);
  EXPECT_EQ(d.grpc_listen, grpcapi::GrpcOptions{}.listen);
  const std::string help = usageText();
  for (const std::string& shown :
       {"--history-size=N          events kept for watchers to resume from (default " +
            std::to_string(d.history_size) + ")",
        "most registrations at once (default " + std::to_string(d.max_nodes) + ")",
        "per API (default " + std::to_string(d.max_watchers) + ")",
        "(EPMDX_GRPC_LISTEN, default " + d.grpc_listen + ")",
        "(EPMDX_HTTP_LISTEN, default " + d.http_listen + ").",
        "(EPMDX_DRAIN_TIMEOUT, default " + std::to_string(d.drain_timeout_ms) + ")",
        std::string("(default ") + (d.takeover_unresponsive ? "true" : "false") + ": OTP's"}) {
    EXPECT_NE(help.find(shown), std::string::npos) << shown;
  }
}

// Each epmdx variable is named in the help, next to its option.
TEST(Options, EveryEpmdxEnvironmentVariableIsInTheHelp) {
  const std::string help = usageText();
  size_t epmdx = 0;
  for (const auto& name : environmentVariables()) {
    if (name.rfind("EPMDX_", 0) == 0) {
      EXPECT_NE(help.find(name), std::string::npos) << name;
      ++epmdx;
    }
  }
  EXPECT_EQ(epmdx, 11u);  // EPMDX_INSTANCE_NAME is the eleventh.
  const auto all = environmentVariables();
  EXPECT_NE(std::find(all.begin(), all.end(), "ERL_EPMD_PORT"), all.end());
  EXPECT_NE(std::find(all.begin(), all.end(), "ERL_EPMD_RELAXED_COMMAND_CHECK"), all.end());
}

TEST(Options, DrainTimeoutHasAFlagAndAVariable) {
  EXPECT_EQ(parse({}).options.drain_timeout_ms, 500);
  EXPECT_EQ(parse({"--drain-timeout=1500"}).options.drain_timeout_ms, 1500);
  EXPECT_EQ(parse({"--drain-timeout", "0"}).options.drain_timeout_ms, 0);
  EXPECT_EQ(parse({}, {{"EPMDX_DRAIN_TIMEOUT", "250"}}).options.drain_timeout_ms, 250);
  EXPECT_EQ(
      parse({"--drain-timeout=50"}, {{"EPMDX_DRAIN_TIMEOUT", "250"}}).options.drain_timeout_ms, 50);
  for (const char* bad : {"x", "-1", "600001", ""}) {
    const auto r = parse({std::string("--drain-timeout=") + bad});
    EXPECT_EQ(r.kind, ParseResult::Kind::Error) << bad;
    EXPECT_EQ(r.error, "--drain-timeout must be a number of milliseconds from 0 to 600000");
  }
  EXPECT_NE(usageText().find("\n    --drain-timeout=MS        "), std::string::npos);
}

// A value from the environment is read by the option's own parser: the same checks, the
// message naming the variable.
TEST(Options, AnEnvironmentValueIsCheckedAsItsOptionIs) {
  const auto r = parse({}, {{"EPMDX_LOG_FORMAT", "xml"}});
  EXPECT_EQ(r.kind, ParseResult::Kind::Error);
  EXPECT_EQ(r.error, "EPMDX_LOG_FORMAT: --log-format must be text or json");
  EXPECT_EQ(parse({}, {{"EPMDX_LOG_FORMAT", "json"}}).options.log_format, "json");
  EXPECT_EQ(parse({}, {{"ERL_EPMD_PORT", "70000"}}).error, "invalid ERL_EPMD_PORT: 70000");
  // An empty EPMDX_ variable is unset; OTP's count when set at all.
  EXPECT_EQ(parse({}, {{"EPMDX_LOG_FORMAT", ""}}).kind, ParseResult::Kind::Run);
  EXPECT_EQ(parse({}, {{"ERL_EPMD_PORT", ""}}).kind, ParseResult::Kind::Error);
}

// An image that sets the default address explicitly must not turn a taken default port
// into a failed start; a flag always asks for its address.
TEST(Options, AListenAddressIsGivenByAFlagOrAVariableThatIsNotTheDefault) {
  const std::string d = Options{}.grpc_listen;
  EXPECT_FALSE(parse({}).options.grpc_listen_explicit);
  EXPECT_FALSE(parse({}, {{"EPMDX_GRPC_LISTEN", d}}).options.grpc_listen_explicit);
  EXPECT_TRUE(parse({}, {{"EPMDX_GRPC_LISTEN", "127.0.0.1:9"}}).options.grpc_listen_explicit);
  EXPECT_TRUE(parse({"--grpc-listen=" + d}).options.grpc_listen_explicit);
  EXPECT_TRUE(parse({"--http-listen=off"}).options.http_listen_explicit);
  EXPECT_FALSE(parse({"--http-listen=off"}).options.grpc_listen_explicit);
}

}  // namespace
}  // namespace epmdx::app
