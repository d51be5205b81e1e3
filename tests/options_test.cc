#include "server/app/options.h"

#include <gtest/gtest.h>

#include <map>

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

// Issue #18: `epmdx --bogus` said "option --bogus needs a value".
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

}  // namespace
}  // namespace epmdx::app
