// epmdxctl against a real epmdx process: the command line (help, version, option syntaxes,
// usage errors), every output format checked against what the daemon's REST API prints,
// list --watch (aligned through health and holder events), several clusters (a CLUSTER
// column, a NOT_FOUND that says where the name is), shell completion run in a real bash,
// error wording, the per-daemon token
// file and a watch that outlives a daemon restart with a new token, and a watch that
// resumes across broken connections without a gap or a repeat.

#include <arpa/inet.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

#include "ctl/connection.h"
#include "epmdx/v1/registry.pb.h"
#include "server/common/token_path.h"
#include "tests/support/net.h"
#include "tests/support/process.h"
#include "tests/support/tcp_proxy.h"

namespace epmdx::testing {
namespace {

using namespace std::chrono_literals;

std::string ctlBinary() {
  return epmdxctlBinary();
}

struct CtlRun {
  int code = -1;
  std::string out;
  std::string err;
};

CtlRun run(std::vector<std::string> argv, std::map<std::string, std::string> env = {}) {
  Process p(std::move(argv), std::move(env));
  const auto st = p.wait(30s);
  return {st.value_or(-1), p.stdoutText(), p.stderrText()};
}

// Polls `condition` until it holds or `timeout` passes (output of a child process).
bool waitUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) {
      return true;
    }
    std::this_thread::sleep_for(20ms);
  }
  return condition();
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    out.push_back(l);
  }
  return out;
}

std::vector<std::string> fields(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  for (std::string f; in >> f;) {
    out.push_back(f);
  }
  return out;
}

std::string tempDir() {
  std::string templ = "/tmp/epmdx-ctl-XXXXXX";
  EXPECT_NE(mkdtemp(templ.data()), nullptr);
  return templ;
}

// A port for a daemon to listen on, below the kernel's ephemeral range: freePort() hands out
// ephemeral ports, which on a machine where other tests hold tens of thousands of client
// connections are often taken again before the daemon binds them (the daemon, like OTP's
// epmd, then exits quietly). Checked free on every IPv4 address, as the daemon binds.
class CtlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tokens_ = "/tmp/epmdx-ctl-test-" + std::to_string(getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::ofstream(tokens_) << "admintok read evict name=ops\nreadtok read\n";
    // A port that was free a moment ago can be taken by another test's connection before
    // the daemon binds it (the daemon then exits): a few tries with fresh ports.
    for (int attempt = 0; attempt < 5 && !started(); ++attempt) {
      port_ = freePort();
      grpc_port_ = freePort();
      http_port_ = freePort();
      std::vector<std::string> argv{epmdxBinary(),
                                    "-port",
                                    std::to_string(port_),
                                    "--grpc-listen=127.0.0.1:" + std::to_string(grpc_port_),
                                    "--http-listen=127.0.0.1:" + std::to_string(http_port_),
                                    "--tokens-file=" + tokens_};
      const auto more = moreArgs();
      argv.insert(argv.end(), more.begin(), more.end());
      daemon_ = std::make_unique<Process>(argv);
    }
    ASSERT_TRUE(started()) << daemon_->stderrText() << " exit " << daemon_->wait(0ms).value_or(-1);
  }
  // A fixture's further daemon options, asked again for each attempt (fresh ports); the
  // ports it adds to more_ports_ are waited for too.
  virtual std::vector<std::string> moreArgs() { return {}; }
  bool started() {
    if (!daemon_ || port_ == grpc_port_ || grpc_port_ == http_port_ || port_ == http_port_) {
      return false;
    }
    return waitUntil(
               [&] {
                 if (!daemon_->running()) {
                   return true;
                 }
                 for (const uint16_t p : more_ports_) {
                   if (!waitForPort(p, 100ms)) {
                     return false;
                   }
                 }
                 return waitForPort(port_, 100ms) && waitForPort(grpc_port_, 100ms) &&
                        waitForPort(http_port_, 100ms);
               },
               5s) &&
           daemon_->running();
  }
  void TearDown() override {
    daemon_.reset();
    unlink(tokens_.c_str());
  }
  std::string server() const { return "--server=127.0.0.1:" + std::to_string(grpc_port_); }
  std::pair<int, std::string> ctl(std::vector<std::string> args,
                                  const std::string& token = "admintok") {
    std::vector<std::string> argv{ctlBinary(), server(), "--token=" + token};
    argv.insert(argv.end(), args.begin(), args.end());
    return runCommand(argv);
  }
  // With stderr, for the wording of errors.
  CtlRun ctlRun(std::vector<std::string> args, const std::string& token = "admintok") {
    std::vector<std::string> argv{ctlBinary(), server(), "--token=" + token};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  }
  int registerNode(const std::string& name, uint16_t port, const std::string& extra = "") {
    return registerOn(port_, name, port, extra);
  }
  // On the epmd port `epmd` (a cluster's).
  int registerOn(uint16_t epmd, const std::string& name, uint16_t port,
                 const std::string& extra = "") {
    const int fd = connectTo("127.0.0.1", epmd);
    sendAll(fd, frame(alive2Body(name, port, 6, 5, extra)));
    EXPECT_EQ(readN(fd, 6, 2000ms).size(), 6u);
    return fd;
  }
  std::string rest(const std::string& path) {
    httplib::Client client("127.0.0.1", http_port_);
    auto res = client.Get(path);
    EXPECT_TRUE(res) << path;
    EXPECT_EQ(res ? res->status : 0, 200) << path;
    return res ? res->body : "";
  }

  std::string tokens_;
  uint16_t port_ = 0;
  uint16_t grpc_port_ = 0;
  uint16_t http_port_ = 0;
  std::unique_ptr<Process> daemon_;
  std::vector<uint16_t> more_ports_;
};

TEST_F(CtlTest, ListGetEvictAndExitCodes) {
  const int fd = registerNode("web1", 4000);
  auto [code, out] = ctl({"list"});
  EXPECT_EQ(code, 0);
  EXPECT_NE(out.find("NAME"), std::string::npos);
  EXPECT_NE(out.find("web1"), std::string::npos);
  auto [jcode, json] = ctl({"list", "-o", "json"});
  EXPECT_EQ(jcode, 0);
  EXPECT_NE(json.find("\"name\":\"web1\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"revision\":\""), std::string::npos) << json;
  EXPECT_EQ(ctl({"list", "-o", "names"}).second, "web1\n");
  EXPECT_EQ(ctl({"get", "web1"}).first, 0);
  EXPECT_EQ(ctl({"get", "nosuch"}).first, 3);
  EXPECT_EQ(ctl({"evict", "web1", "--if-registration=999"}).first, 4);
  EXPECT_EQ(ctl({"evict", "web1"}, "readtok").first, 5);
  EXPECT_EQ(ctl({"list"}, "wrong").first, 5);
  EXPECT_EQ(ctl({"frobnicate"}).first, 2);
  EXPECT_EQ(ctl({"health"}), std::make_pair(0, std::string("SERVING\n")));
  auto [ecode, evicted] = ctl({"evict", "web1", "--if-registration=1", "--reason=hung"});
  EXPECT_EQ(ecode, 0);
  EXPECT_TRUE(std::regex_match(
      evicted, std::regex("evicted web1 \\(registration 1\\) at revision [0-9]+\n")))
      << evicted;
  EXPECT_TRUE(readUntilClose(fd, 2000ms).closed);
  EXPECT_EQ(ctl({"evict", "web1"}).first, 3);
  close(fd);
  auto [ucode, unused] =
      runCommand({ctlBinary(), "--server=127.0.0.1:" + std::to_string(freePort()), "--token=x",
                  "--timeout=1", "list"});
  EXPECT_EQ(ucode, 6);
}

TEST(CtlCommandLine, EveryCommandHasHelpThatExitsZero) {
  for (const std::string cmd :
       {"", "list", "get", "watch", "evict", "events", "health", "completion"}) {
    std::vector<std::string> argv{ctlBinary()};
    if (!cmd.empty()) {
      argv.push_back(cmd);
    }
    argv.push_back("--help");
    const CtlRun r = run(argv);
    EXPECT_EQ(r.code, 0) << cmd << r.err;
    const std::string usage = "Usage: epmdxctl" + (cmd.empty() ? "" : " " + cmd);
    EXPECT_NE(r.out.find(usage), std::string::npos) << cmd << "\n" << r.out;
    EXPECT_NE(r.out.find("Exit codes:"), std::string::npos) << r.out;
  }
  // -h too, and the top-level help lists every command.
  const CtlRun h = run({ctlBinary(), "-h"});
  EXPECT_EQ(h.code, 0);
  for (const char* cmd : {"list", "get", "watch", "evict", "health", "completion"}) {
    EXPECT_NE(h.out.find(std::string("  ") + cmd + " "), std::string::npos) << cmd;
  }
  EXPECT_NE(run({ctlBinary(), "list", "--help"}).out.find("table|wide|json|yaml|names"),
            std::string::npos);
}

TEST(CtlCommandLine, VersionAndUsageErrors) {
  const CtlRun v = run({ctlBinary(), "--version"});
  EXPECT_EQ(v.code, 0);
  EXPECT_TRUE(std::regex_match(v.out, std::regex("epmdxctl [0-9]+\\.[0-9]+\\.[0-9]+\n"))) << v.out;

  const CtlRun bad = run({ctlBinary(), "list", "-o", "xml"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_EQ(bad.out, "");
  EXPECT_NE(bad.err.find("\"xml\" is not one of table, wide, json, yaml, names"), std::string::npos)
      << bad.err;
  EXPECT_NE(bad.err.find("epmdxctl list --help"), std::string::npos) << bad.err;
  const CtlRun bad_eq = run({ctlBinary(), "get", "x", "--output=csv"});
  EXPECT_EQ(bad_eq.code, 2);
  EXPECT_NE(bad_eq.err.find("\"csv\" is not one of"), std::string::npos) << bad_eq.err;

  const CtlRun unknown = run({ctlBinary(), "frobnicate"});
  EXPECT_EQ(unknown.code, 2);
  EXPECT_NE(unknown.err.find("unknown command \"frobnicate\""), std::string::npos) << unknown.err;
  const CtlRun none = run({ctlBinary()});
  EXPECT_EQ(none.code, 2);
  EXPECT_NE(none.err.find("a command is required"), std::string::npos) << none.err;
  const CtlRun no_name = run({ctlBinary(), "get"});
  EXPECT_EQ(no_name.code, 2);
  EXPECT_NE(no_name.err.find("NAME is required"), std::string::npos) << no_name.err;
  const CtlRun both = run({ctlBinary(), "watch", "--after=5", "--initial"});
  EXPECT_EQ(both.code, 2);
  EXPECT_NE(both.err.find("--after excludes --initial"), std::string::npos) << both.err;
  const CtlRun not_number = run({ctlBinary(), "evict", "a", "--if-registration", "seven"});
  EXPECT_EQ(not_number.code, 2);
  EXPECT_NE(not_number.err.find("--if-registration"), std::string::npos) << not_number.err;
  const CtlRun unknown_flag = run({ctlBinary(), "list", "--frob"});
  EXPECT_EQ(unknown_flag.code, 2);
  EXPECT_NE(unknown_flag.err.find("--frob"), std::string::npos) << unknown_flag.err;
}

TEST_F(CtlTest, BothOptionSyntaxesAndGlobalOptionsAfterTheCommand) {
  const int fd = registerNode("web1", 4000);
  const std::string port = std::to_string(grpc_port_);
  const CtlRun spaced = run({ctlBinary(), "--server", "127.0.0.1:" + port, "--token", "admintok",
                             "--timeout", "5", "get", "web1", "-o", "json"});
  const CtlRun equals = run({ctlBinary(), "--server=127.0.0.1:" + port, "--token=admintok",
                             "--timeout=5", "get", "web1", "--output=json"});
  const CtlRun after = run({ctlBinary(), "get", "web1", "--output", "json",
                            "--server=127.0.0.1:" + port, "--token", "admintok"});
  EXPECT_EQ(spaced.code, 0) << spaced.err;
  EXPECT_EQ(equals.code, 0) << equals.err;
  EXPECT_EQ(after.code, 0) << after.err;
  EXPECT_NE(spaced.out.find("\"name\":\"web1\""), std::string::npos) << spaced.out;
  EXPECT_EQ(spaced.out, equals.out);
  EXPECT_EQ(spaced.out, after.out);
  // The short forms: -o json, -ojson, and -o=json as epmdxctl has always accepted.
  for (const std::string form : {"-ojson", "-o=json"}) {
    EXPECT_EQ(ctlRun({"get", "web1", form}).out, spaced.out) << form;
  }
  EXPECT_EQ(ctlRun({"evict", "web1", "--reason", "spaced", "--if-registration", "1"}).code, 0);
  close(fd);
}

TEST_F(CtlTest, JsonIsExactlyWhatRestPrints) {
  const int a = registerNode("web1", 4000, std::string("\x01\x02 extra", 8));
  const int b = registerNode("caf\xc3\xa9", 4001);
  const CtlRun node = ctlRun({"get", "web1", "-o", "json"});
  ASSERT_EQ(node.code, 0) << node.err;
  EXPECT_EQ(node.out, rest("/v1/nodes/web1") + "\n");
  const CtlRun list = ctlRun({"list", "-o", "json"});
  ASSERT_EQ(list.code, 0) << list.err;
  EXPECT_EQ(list.out, rest("/v1/nodes") + "\n");
  // And it is the proto's JSON: it parses back into the same message the REST body gives.
  v1::ListNodesResponse from_ctl;
  v1::ListNodesResponse from_rest;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(list.out, &from_ctl).ok());
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(rest("/v1/nodes"), &from_rest).ok());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(from_ctl, from_rest));
  EXPECT_EQ(from_ctl.nodes_size(), 2);
  close(a);
  close(b);
}

TEST_F(CtlTest, YamlHasTheFieldsAndValuesOfTheJson) {
  // Names a careless YAML writer gets wrong: a YAML 1.1 boolean, a number, non-ASCII,
  // a colon-space, a quote; bytes in extra.
  std::vector<int> fds;
  uint16_t p = 5000;
  for (const std::string name : {"yes", "123", "caf\xc3\xa9", "a: b", "q\"uote", "n"}) {
    fds.push_back(registerNode(name, p++, std::string("\x00\xff\n", 3)));
  }
  const std::string dir = tempDir();
  const CtlRun yaml = ctlRun({"list", "-o", "yaml"});
  ASSERT_EQ(yaml.code, 0) << yaml.err;
  std::ofstream(dir + "/ctl.yaml") << yaml.out;
  std::ofstream(dir + "/rest.json") << rest("/v1/nodes");
  const CtlRun node_yaml = ctlRun({"get", "yes", "-o", "yaml"});
  ASSERT_EQ(node_yaml.code, 0) << node_yaml.err;
  std::ofstream(dir + "/node.yaml") << node_yaml.out;
  std::ofstream(dir + "/node.json") << rest("/v1/nodes/yes");
  // PyYAML (a YAML 1.1 reader, the strictest about plain scalars) against Python's json.
  const std::string compare =
      "import sys, json, yaml\n"
      "y = yaml.safe_load(open(sys.argv[1])); j = json.load(open(sys.argv[2]))\n"
      "print('same' if y == j else 'differ: %r != %r' % (y, j))\n";
  EXPECT_EQ(run({"/usr/bin/python3", "-c", compare, dir + "/ctl.yaml", dir + "/rest.json"}).out,
            "same\n")
      << yaml.out;
  EXPECT_EQ(run({"/usr/bin/python3", "-c", compare, dir + "/node.yaml", dir + "/node.json"}).out,
            "same\n")
      << node_yaml.out;
  // Field order is the proto's: name first, then port.
  EXPECT_EQ(node_yaml.out.rfind("name: ", 0), 0u) << node_yaml.out;
  EXPECT_LT(node_yaml.out.find("name:"), node_yaml.out.find("port:"));
  std::filesystem::remove_all(dir);
  for (int fd : fds) {
    close(fd);
  }
}

TEST_F(CtlTest, TableWideNamesAndNoHeaders) {
  // Registered out of order: tables and name lists are sorted by name.
  const int b = registerNode("web2", 4001);
  const int a = registerNode("web1", 4000);
  const CtlRun table = ctlRun({"list"});
  ASSERT_EQ(table.code, 0) << table.err;
  auto rows = lines(table.out);
  ASSERT_EQ(rows.size(), 3u) << table.out;
  EXPECT_EQ(fields(rows[0]), (std::vector<std::string>{"NAME", "PORT", "TYPE", "AGE"}));
  EXPECT_EQ(fields(rows[1])[0], "web1");  // The short table keeps the epmd name.
  EXPECT_EQ(fields(rows[1])[1], "4000");
  EXPECT_EQ(fields(rows[1])[2], "normal");
  // Columns line up: PORT starts at the same offset on every row.
  EXPECT_EQ(rows[0].find("PORT"), rows[1].find("4000"));

  const CtlRun bare = ctlRun({"list", "--no-headers"});
  EXPECT_EQ(bare.code, 0);
  auto bare_rows = lines(bare.out);
  ASSERT_EQ(bare_rows.size(), 2u) << bare.out;
  EXPECT_EQ(fields(bare_rows[0])[0], "web1");
  EXPECT_EQ(fields(bare_rows[1])[0], "web2");

  const CtlRun wide = ctlRun({"get", "web2", "-o", "wide"});
  ASSERT_EQ(wide.code, 0) << wide.err;
  auto wide_rows = lines(wide.out);
  ASSERT_EQ(wide_rows.size(), 2u) << wide.out;
  EXPECT_EQ(
      fields(wide_rows[0]),
      (std::vector<std::string>{"NAME", "PORT", "TYPE", "AGE", "CLUSTER", "VERSIONS", "CREATION",
                                "REGISTERED-AT", "ID", "PEER", "HEALTH", "HOLDER"}));
  v1::Node node;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(rest("/v1/nodes/web2"), &node).ok());
  const auto cols = fields(wide_rows[1]);
  ASSERT_EQ(cols.size(), 12u) << wide.out;
  // Wide tables and `get` show the node as Erlang users know it: name@host (a loopback
  // peer is on this host: the daemon's short host name, as Node.host says).
  ASSERT_FALSE(node.host().empty());
  EXPECT_EQ(cols[0], "web2@" + node.host());
  EXPECT_EQ(fields(lines(ctlRun({"get", "web2"}).out)[1])[0], "web2@" + node.host());
  EXPECT_EQ(fields(lines(ctlRun({"list", "-o", "wide", "--no-headers"}).out)[0])[0],
            "web1@" + node.host());
  EXPECT_EQ(cols[4], "default");
  EXPECT_EQ(cols[5], "5-6");
  EXPECT_EQ(cols[6], std::to_string(node.creation()));
  EXPECT_TRUE(std::regex_match(cols[7], std::regex("20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z")))
      << cols[7];
  EXPECT_EQ(cols[8], std::to_string(node.registration_id()));
  EXPECT_EQ(cols[9], node.peer_address());
  EXPECT_EQ(cols[10], "unknown");  // Probing is off by default.
  EXPECT_EQ(cols[11], "unknown");  // So are holder lookups.
  auto bare_cols = fields(ctlRun({"get", "web2", "-o", "wide", "--no-headers"}).out);
  ASSERT_EQ(bare_cols.size(), cols.size());
  bare_cols[3] = cols[3];  // AGE may have ticked over between the two calls.
  EXPECT_EQ(bare_cols, cols);
  EXPECT_EQ(ctlRun({"list", "-o", "names"}).out, "web1\nweb2\n");
  close(a);
  close(b);
}

TEST_F(CtlTest, EventsListTheRecentHistory) {
  const int a = registerNode("web1", 4000);
  const CtlRun evicted = ctlRun({"evict", "web1", "--reason=hung since 03:12"});
  ASSERT_EQ(evicted.code, 0) << evicted.err;
  const int b = registerNode("web2", 4001);
  const CtlRun table = ctlRun({"events"});
  ASSERT_EQ(table.code, 0) << table.err;
  const auto rows = lines(table.out);
  ASSERT_EQ(rows.size(), 4u) << table.out;
  EXPECT_EQ(fields(rows[0]), (std::vector<std::string>{"TIME", "REVISION", "TYPE", "NAME", "REASON",
                                                       "ACTOR", "DETAIL"}));
  v1::Node node;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(rest("/v1/nodes/web2"), &node).ok());
  const auto first = fields(rows[1]);
  EXPECT_TRUE(std::regex_match(first[0], std::regex("20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z")))
      << first[0];
  EXPECT_EQ(first[2], "registered");
  EXPECT_EQ(first[3], "web1@" + node.host());
  EXPECT_EQ(first[4], "-");
  const auto second = fields(rows[2]);
  EXPECT_EQ(std::stoull(second[1]), std::stoull(first[1]) + 1);
  EXPECT_EQ(second[2], "unregistered");
  EXPECT_EQ(second[4], "evicted");
  EXPECT_EQ(second[5].rfind("ops@", 0), 0u) << second[5];
  EXPECT_NE(rows[2].find("hung since 03:12"), std::string::npos) << rows[2];
  EXPECT_EQ(fields(rows[3])[2], "registered");
  // --limit keeps the newest; -o json is exactly REST's answer (same revision, no change).
  const auto limited = lines(ctlRun({"events", "--limit=1", "--no-headers"}).out);
  ASSERT_EQ(limited.size(), 1u);
  EXPECT_EQ(fields(limited[0]), fields(rows[3]));
  EXPECT_EQ(ctlRun({"events", "-o", "json"}).out, rest("/v1/events") + "\n");
  EXPECT_EQ(ctlRun({"events", "-o", "names"}).out, "web1\nweb1\nweb2\n");
  const CtlRun over = ctlRun({"events", "--limit=1001"});
  EXPECT_EQ(over.code, 2) << over.err;
  close(a);
  close(b);
}

TEST_F(CtlTest, ErrorsNameTheStatusAndHintAtTheHostPart) {
  const int fd = registerNode("a", 4000);
  const CtlRun missing = ctlRun({"get", "nosuch"});
  EXPECT_EQ(missing.code, 3);
  EXPECT_EQ(missing.err, "epmdxctl: NOT_FOUND: no node named \"nosuch\"\n");
  const CtlRun at = ctlRun({"get", "a@host1"});
  EXPECT_EQ(at.code, 3);
  EXPECT_NE(at.err.find("NOT_FOUND: no node named \"a@host1\""), std::string::npos) << at.err;
  EXPECT_NE(at.err.find("epmd names have no host part: try `a`"), std::string::npos) << at.err;
  const CtlRun evict_at = ctlRun({"evict", "a@host1"});
  EXPECT_EQ(evict_at.code, 3);
  EXPECT_NE(evict_at.err.find("try `a`"), std::string::npos) << evict_at.err;
  const CtlRun scope = ctlRun({"evict", "a"}, "readtok");
  EXPECT_EQ(scope.code, 5);
  EXPECT_EQ(scope.err.rfind("epmdxctl: PERMISSION_DENIED: ", 0), 0u) << scope.err;
  const CtlRun wrong = ctlRun({"list"}, "wrong");
  EXPECT_EQ(wrong.code, 5);
  EXPECT_EQ(wrong.err.rfind("epmdxctl: UNAUTHENTICATED: ", 0), 0u) << wrong.err;
  const CtlRun precondition = ctlRun({"evict", "a", "--if-registration=999"});
  EXPECT_EQ(precondition.code, 4);
  EXPECT_EQ(precondition.err.rfind("epmdxctl: FAILED_PRECONDITION: ", 0), 0u) << precondition.err;
  for (const CtlRun* r : {&missing, &at, &scope, &wrong, &precondition}) {
    EXPECT_EQ(std::regex_search(r->err, std::regex("\\([0-9]+\\)")), false) << r->err;
  }
  close(fd);
}

TEST_F(CtlTest, UnreadableTokenFileIsNamedWithTheReason) {
  const std::string missing = "/tmp/epmdx-ctl-no-such-token-" + std::to_string(getpid());
  const CtlRun r = run({ctlBinary(), server(), "--token-file=" + missing, "list"});
  EXPECT_EQ(r.code, 5);
  EXPECT_EQ(r.err, "epmdxctl: cannot read token file " + missing + ": No such file or directory\n");
  const std::string dir = tempDir();
  const CtlRun d = run({ctlBinary(), server(), "list"}, {{"EPMDX_TOKEN_FILE", dir}});
  EXPECT_EQ(d.code, 5);
  EXPECT_EQ(d.err, "epmdxctl: cannot read token file " + dir + ": Is a directory\n");
  std::ofstream(dir + "/empty");
  const CtlRun e = run({ctlBinary(), server(), "--token-file", dir + "/empty", "list"});
  EXPECT_EQ(e.code, 5);
  EXPECT_EQ(e.err, "epmdxctl: token file " + dir + "/empty is empty\n");
  // The default file (per daemon port) missing: the daemon's answer, and why no token went.
  const CtlRun none =
      run({ctlBinary(), server(), "list"},
          {{"XDG_RUNTIME_DIR", dir}, {"EPMDX_TOKEN", ""}, {"EPMDX_TOKEN_FILE", ""}});
  EXPECT_EQ(none.code, 5);
  const std::string expected_path = dir + "/epmdx/admin-" + std::to_string(grpc_port_) + ".token";
  EXPECT_NE(none.err.find("UNAUTHENTICATED"), std::string::npos) << none.err;
  EXPECT_NE(
      none.err.find("cannot read token file " + expected_path + ": No such file or directory"),
      std::string::npos)
      << none.err;
  EXPECT_EQ(none.err.find("(16)"), std::string::npos) << none.err;
  // ...and only then: health needs no token.
  const CtlRun health =
      run({ctlBinary(), server(), "health"},
          {{"XDG_RUNTIME_DIR", dir}, {"EPMDX_TOKEN", ""}, {"EPMDX_TOKEN_FILE", ""}});
  EXPECT_EQ(health.code, 0) << health.err;
  EXPECT_EQ(health.out, "SERVING\n");
  std::filesystem::remove_all(dir);
}

TEST_F(CtlTest, OneShotCallsReadTheTokenFileAgainOnceWhenRefused) {
  const std::string dir = tempDir();
  const std::string path = dir + "/token";
  const std::string target = "127.0.0.1:" + std::to_string(grpc_port_);
  auto getenvFn = [](const char* n) { return static_cast<const char*>(getenv(n)); };
  auto connect = [&](const std::string& first, const std::string& then) {
    std::ofstream(path) << first << "\n";
    auto tokens = ctl::TokenSource::resolve("", path, getenvFn, target);
    EXPECT_TRUE(tokens.load());
    std::ofstream(path) << then << "\n";  // The daemon wrote a new token since.
    ctl::ConnectOptions options;
    options.server = target;
    std::string error;
    return ctl::Connection::open(options, std::move(tokens), error);
  };
  auto list = [](ctl::Connection& conn, int& calls) {
    v1::ListNodesResponse resp;
    return conn.call([&](grpc::ClientContext* ctx) {
      ++calls;
      return conn.registry().ListNodes(ctx, v1::ListNodesRequest(), &resp);
    });
  };
  int calls = 0;
  auto fresh = connect("stale", "admintok");
  EXPECT_TRUE(list(*fresh, calls).ok());
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(fresh->tokens().token(), "admintok");
  calls = 0;
  auto still_wrong = connect("stale", "wrong");  // Re-read once, then the daemon's answer.
  EXPECT_EQ(list(*still_wrong, calls).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(calls, 2);
  calls = 0;
  auto unchanged = connect("stale", "stale");  // Nothing new in the file: no second call.
  EXPECT_EQ(list(*unchanged, calls).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(calls, 1);
  std::filesystem::remove_all(dir);
}

TEST_F(CtlTest, ListWatchListsThenFollowsWireRegistrations) {
  const int a = registerNode("before", 4000);
  Process watch({ctlBinary(), server(), "--token=readtok", "list", "--watch"});
  ASSERT_TRUE(waitUntil([&] { return watch.stdoutText().find("before") != std::string::npos; }))
      << watch.stderrText();
  const int b = registerNode("after", 4001);
  ASSERT_TRUE(waitUntil([&] { return lines(watch.stdoutText()).size() >= 3; }))
      << watch.stdoutText();
  close(a);
  ASSERT_TRUE(waitUntil([&] { return lines(watch.stdoutText()).size() >= 4; }))
      << watch.stdoutText();
  const auto rows = lines(watch.stdoutText());
  EXPECT_EQ(fields(rows[0]), (std::vector<std::string>{"EVENT", "NAME", "PORT", "TYPE", "AGE"}));
  EXPECT_EQ(fields(rows[1])[0], "EXISTING");
  EXPECT_EQ(fields(rows[1])[1], "before");
  EXPECT_EQ(fields(rows[2])[0], "REGISTERED");
  EXPECT_EQ(fields(rows[2])[1], "after");
  EXPECT_EQ(fields(rows[2])[2], "4001");
  EXPECT_EQ(fields(rows[3])[0], "UNREGISTERED");
  EXPECT_EQ(fields(rows[3])[1], "before");
  EXPECT_EQ(rows[0].find("NAME"), rows[3].find("before"));  // Later rows stay aligned.
  EXPECT_TRUE(watch.running());

  // -o json: the list as `list -o json` prints it, then one NodeEvent per line.
  Process json({ctlBinary(), server(), "--token=readtok", "list", "-w", "-o", "json"});
  ASSERT_TRUE(waitUntil([&] { return !lines(json.stdoutText()).empty(); }));
  const int c = registerNode("third", 4002);
  ASSERT_TRUE(waitUntil([&] { return lines(json.stdoutText()).size() >= 2; }));
  const auto out = lines(json.stdoutText());
  v1::ListNodesResponse listed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(out[0], &listed).ok()) << out[0];
  ASSERT_EQ(listed.nodes_size(), 1);
  EXPECT_EQ(listed.nodes(0).name(), "after");
  v1::NodeEvent event;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(out[1], &event).ok()) << out[1];
  EXPECT_EQ(event.type(), v1::NodeEvent::REGISTERED);
  EXPECT_EQ(event.node().name(), "third");
  EXPECT_EQ(event.revision(), listed.revision() + 1);  // Nothing lost between list and watch.

  // -o yaml: the same as YAML documents, which a YAML reader takes as a stream.
  Process yaml({ctlBinary(), server(), "--token=readtok", "list", "--watch", "-o", "yaml"});
  ASSERT_TRUE(waitUntil([&] { return yaml.stdoutText().find("revision:") != std::string::npos; }));
  close(c);
  ASSERT_TRUE(
      waitUntil([&] { return yaml.stdoutText().find("type: UNREGISTERED") != std::string::npos; }));
  const std::string dir = tempDir();
  std::ofstream(dir + "/watch.yaml") << yaml.stdoutText();
  const std::string summary =
      "import sys, yaml\n"
      "docs = list(yaml.safe_load_all(open(sys.argv[1])))\n"
      "print(sorted(n['name'] for n in docs[0]['nodes']), docs[1]['type'], "
      "docs[1]['node']['name'], docs[1]['reason'])\n";
  EXPECT_EQ(run({"/usr/bin/python3", "-c", summary, dir + "/watch.yaml"}).out,
            "['after', 'third'] UNREGISTERED third CONNECTION_CLOSED\n")
      << yaml.stdoutText();
  std::filesystem::remove_all(dir);
  close(b);
}

// Where each whitespace-separated field of `line` starts.
std::vector<size_t> fieldStarts(const std::string& line) {
  std::vector<size_t> out;
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] != ' ' && (i == 0 || line[i - 1] == ' ')) {
      out.push_back(i);
    }
  }
  return out;
}

// A daemon that probes its nodes and looks up their holders every second: HEALTH_CHANGED and
// HOLDER_CHANGED events within a few seconds of a registration.
class CtlHealthTest : public CtlTest {
 protected:
  std::vector<std::string> moreArgs() override {
    return {"--probe-interval=1", "--holder-interval=1"};
  }
};

TEST_F(CtlHealthTest, ListWatchColumnsStayAlignedThroughHealthAndHolderEvents) {
  const int a = registerNode("before", freePort());  // Nothing listens there: unresponsive.
  Process table({ctlBinary(), server(), "--token=readtok", "list", "--watch"});
  Process wide({ctlBinary(), server(), "--token=readtok", "list", "--watch", "-o", "wide"});
  ASSERT_TRUE(waitUntil([&] {
    return lines(table.stdoutText()).size() >= 2 && lines(wide.stdoutText()).size() >= 2;
  })) << table.stderrText();
  const int b = registerNode("h1", freePort());
  // A row "EVENT h1..." (h1@host in wide tables).
  const auto hasRow = [](const Process& p, const std::string& event) {
    for (const auto& l : lines(p.stdoutText())) {
      const auto f = fields(l);
      if (f.size() >= 2 && f[0] == event && f[1].substr(0, f[1].find('@')) == "h1") {
        return true;
      }
    }
    return false;
  };
  const auto hasBoth = [&](const Process& p) {
    return hasRow(p, "HEALTH_CHANGED") && hasRow(p, "HOLDER_CHANGED");
  };
  ASSERT_TRUE(waitUntil([&] { return hasBoth(table) && hasBoth(wide); }, 15s))
      << table.stdoutText() << wide.stdoutText();
  for (const Process* p : {&table, &wide}) {
    const auto rows = lines(p->stdoutText());
    const auto header = fieldStarts(rows[0]);
    for (size_t i = 1; i < rows.size(); ++i) {
      // Every column of every row starts under its header.
      const auto starts = fieldStarts(rows[i]);
      ASSERT_GE(starts.size(), header.size() - 1) << rows[i];
      for (size_t c = 0; c + 1 < header.size(); ++c) {
        EXPECT_EQ(starts[c], header[c]) << "column " << c << " of\n" << p->stdoutText();
      }
    }
  }
  // `events` shows the new health, with the probe's error, and the holder found.
  const CtlRun events = ctlRun({"events"});
  ASSERT_EQ(events.code, 0) << events.err;
  bool health = false;
  bool holder = false;
  for (const auto& l : lines(events.out)) {
    const auto f = fields(l);
    if (f.size() >= 7 && f[2] == "health_changed" && f[3].rfind("h1@", 0) == 0) {
      health = true;
      EXPECT_EQ(f[6].rfind("health=unresponsive(", 0), 0u) << l;
      EXPECT_NE(l.find(" error=\""), std::string::npos) << l;
    }
    if (f.size() >= 7 && f[2] == "holder_changed" && f[3].rfind("h1@", 0) == 0) {
      holder = true;
      // This process holds the registration's socket.
      EXPECT_EQ(f[6].rfind("holder=" + std::to_string(getpid()) + "/", 0), 0u) << l;
    }
  }
  EXPECT_TRUE(health) << events.out;
  EXPECT_TRUE(holder) << events.out;
  close(a);
  close(b);
}

std::vector<std::string> firstFields(const std::string& line, size_t n) {
  auto f = fields(line);
  f.resize(std::min(n, f.size()));
  return f;
}

// A daemon with the clusters blue and green besides the default one.
class CtlClustersTest : public CtlTest {
 protected:
  std::vector<std::string> moreArgs() override {
    blue_ = freePort();
    green_ = freePort();
    more_ports_ = {blue_, green_};
    return {"--cluster=blue=" + std::to_string(blue_), "--cluster=green=" + std::to_string(green_)};
  }
  uint16_t blue_ = 0;
  uint16_t green_ = 0;
};

TEST_F(CtlClustersTest, TablesShowTheClusterAndNotFoundSaysWhereTheNameIs) {
  const int a = registerOn(blue_, "app", 5001);
  const int b = registerOn(green_, "app", 5002);
  const int c = registerNode("solo", 5003);
  const CtlRun list = ctlRun({"list"});
  ASSERT_EQ(list.code, 0) << list.err;
  const auto rows = lines(list.out);
  ASSERT_EQ(rows.size(), 4u) << list.out;
  EXPECT_EQ(fields(rows[0]), (std::vector<std::string>{"NAME", "CLUSTER", "PORT", "TYPE", "AGE"}));
  EXPECT_EQ(firstFields(rows[1], 3), (std::vector<std::string>{"app", "blue", "5001"}));
  EXPECT_EQ(firstFields(rows[2], 3), (std::vector<std::string>{"app", "green", "5002"}));
  EXPECT_EQ(firstFields(rows[3], 3), (std::vector<std::string>{"solo", "default", "5003"}));
  // One cluster chosen: the column says nothing.
  const CtlRun blue = ctlRun({"--cluster=blue", "list"});
  EXPECT_EQ(fields(lines(blue.out).at(0)),
            (std::vector<std::string>{"NAME", "PORT", "TYPE", "AGE"}));
  // list --watch has it too, in its place after NAME.
  Process watch({ctlBinary(), server(), "--token=readtok", "list", "--watch"});
  ASSERT_TRUE(waitUntil([&] { return lines(watch.stdoutText()).size() >= 4; }));
  EXPECT_EQ(fields(lines(watch.stdoutText())[0]),
            (std::vector<std::string>{"EVENT", "NAME", "CLUSTER", "PORT", "TYPE", "AGE"}));
  const int d = registerOn(green_, "late", 5004);
  ASSERT_TRUE(waitUntil([&] { return lines(watch.stdoutText()).size() >= 5; }));
  EXPECT_EQ(fields(lines(watch.stdoutText())[4]).at(2), "green") << watch.stdoutText();

  // events too: the cluster after the name.
  const auto events = lines(ctlRun({"events"}).out);
  ASSERT_GE(events.size(), 5u);
  EXPECT_EQ(fields(events[0]), (std::vector<std::string>{"TIME", "REVISION", "TYPE", "NAME",
                                                         "CLUSTER", "REASON", "ACTOR", "DETAIL"}));
  EXPECT_EQ(fields(events[1])[4], "blue") << events[1];
  EXPECT_EQ(fields(events[2])[4], "green") << events[2];
  EXPECT_EQ(fields(events[3])[4], "default") << events[3];
  EXPECT_EQ(fields(lines(ctlRun({"--cluster=blue", "events"}).out).at(0)).size(), 7u);

  // get/evict without --cluster look in the default cluster; NOT_FOUND names the others.
  const CtlRun get = ctlRun({"get", "app"});
  EXPECT_EQ(get.code, 3);
  EXPECT_NE(get.err.find("app is not in the default cluster; it is in blue, green: use "
                         "--cluster=blue"),
            std::string::npos)
      << get.err;
  const CtlRun late = ctlRun({"get", "late"});
  EXPECT_EQ(late.code, 3);
  EXPECT_NE(late.err.find("it is in green: use --cluster=green"), std::string::npos) << late.err;
  const CtlRun nowhere = ctlRun({"get", "nosuch"});
  EXPECT_EQ(nowhere.code, 3);
  EXPECT_EQ(nowhere.err.find("cluster"), std::string::npos) << nowhere.err;
  const CtlRun evict = ctlRun({"evict", "app"});
  EXPECT_EQ(evict.code, 3);
  EXPECT_NE(evict.err.find("it is in blue, green"), std::string::npos) << evict.err;
  // Asked in a cluster, the answer is that cluster's alone.
  const CtlRun inBlue = ctlRun({"--cluster=blue", "get", "late"});
  EXPECT_EQ(inBlue.code, 3);
  EXPECT_EQ(inBlue.err.find("green"), std::string::npos) << inBlue.err;
  EXPECT_EQ(ctlRun({"--cluster=blue", "get", "app"}).code, 0);
  EXPECT_EQ(ctlRun({"--cluster=green", "evict", "app"}).code, 0);
  EXPECT_NE(ctlRun({"get", "app"}).err.find("it is in blue: use --cluster=blue"),
            std::string::npos);
  close(a);
  close(b);
  close(c);
  close(d);
}

TEST_F(CtlTest, BashCompletionCompletesCommandsFormatsAndNodeNames) {
  const int fd = registerNode("web1", 4000);
  const CtlRun script = run({ctlBinary(), "completion", "bash"});
  ASSERT_EQ(script.code, 0) << script.err;
  EXPECT_NE(script.out.find("complete -F _epmdxctl_complete epmdxctl"), std::string::npos);
  const std::string dir = tempDir();
  std::ofstream(dir + "/completion.bash") << script.out;
  // Completes the words as bash would, with the real script in a real bash.
  auto complete = [&](const std::string& words, int cword) {
    const std::string body = "source " + dir + "/completion.bash\nCOMP_WORDS=(" + ctlBinary() +
                             " " + words + ")\nCOMP_CWORD=" + std::to_string(cword) +
                             "\n_epmdxctl_complete\necho \"${COMPREPLY[*]}\"\n";
    return run({"/bin/bash", "-c", body},
               {{"EPMDX_SERVER", "127.0.0.1:" + std::to_string(grpc_port_)},
                {"EPMDX_TOKEN", "readtok"}})
        .out;
  };
  EXPECT_EQ(complete("li", 1), "list lift\n");
  EXPECT_EQ(complete("lis", 1), "list\n");
  EXPECT_EQ(complete("list -o ''", 3), "table wide json yaml names\n");
  EXPECT_EQ(complete("list --output = j", 4), "json\n");
  EXPECT_EQ(complete("watch -o ''", 3), "text json yaml\n");
  EXPECT_EQ(complete("get w", 2), "web1\n");
  EXPECT_EQ(complete("list --no", 2), "--no-headers\n");
  // A flag takes no value: what follows it is completed as usual.
  EXPECT_NE(complete("list --watch ''", 3).find("--no-headers"), std::string::npos);
  EXPECT_EQ(complete("get --no-headers w", 3), "web1\n");
  EXPECT_EQ(complete("--token-file /nonexistent-dir/", 2), "\n");  // Files, none here.
  EXPECT_EQ(complete("evict --if", 2), "--if-registration\n");
  EXPECT_EQ(complete("--ser", 1), "--server\n");
  EXPECT_EQ(complete("completion ''", 2), "bash\n");
  const CtlRun other = run({ctlBinary(), "completion", "fish"});
  EXPECT_EQ(other.code, 2);
  EXPECT_NE(other.err.find("\"fish\" is not one of bash"), std::string::npos) << other.err;
  std::filesystem::remove_all(dir);
  close(fd);
}

TEST_F(CtlTest, WatchResumesAcrossBrokenConnectionsWithoutGapOrRepeat) {
  TcpProxy proxy(grpc_port_);
  const int a = registerNode("a", 1);
  Process watch({ctlBinary(), "--server=127.0.0.1:" + std::to_string(proxy.port()),
                 "--token=readtok", "watch", "--initial"});
  auto waitFor = [&watch](const std::string& needle) {
    return waitUntil([&] { return watch.stdoutText().find(needle) != std::string::npos; });
  };
  ASSERT_TRUE(waitFor(" existing a "));
  // Revisions start from the daemon's start time; what matters is that they follow on.
  const long base = std::stol(watch.stdoutText());
  auto rev = [base](int k) { return std::to_string(base + k) + " "; };
  const int b = registerNode("b", 2);
  ASSERT_TRUE(waitFor(rev(1) + "registered b "));
  proxy.cutAll();  // The stream breaks; changes keep happening meanwhile.
  const int c = registerNode("c", 3);
  close(a);
  ASSERT_TRUE(waitFor(rev(3) + "unregistered a reason=connection_closed"));
  proxy.cutAll();
  close(b);
  ASSERT_TRUE(waitFor(rev(4) + "unregistered b "));
  EXPECT_GE(proxy.connectionsSeen(), 2);
  // Every revision exactly once, in order.
  const std::string out = watch.stdoutText();
  std::vector<long> revisions;
  std::regex line("^([0-9]+) (registered|unregistered) ");
  std::istringstream in(out);
  for (std::string l; std::getline(in, l);) {
    std::smatch m;
    if (std::regex_search(l, m, line)) {
      revisions.push_back(std::stol(m[1]) - base);
    }
  }
  EXPECT_EQ(revisions, (std::vector<long>{1, 2, 3, 4})) << out;
  EXPECT_NE(watch.stderrText().find("watch interrupted (UNAVAILABLE"), std::string::npos)
      << watch.stderrText();
  close(c);
}

TEST_F(CtlTest, WatchFromAFutureRevisionIsRefused) {
  // A revision the user gave that the daemon has not reached is an error (exit 1, the
  // daemon's INVALID_ARGUMENT), not something to resync from.
  auto [lcode, json] = ctl({"list", "-o", "json"});
  ASSERT_EQ(lcode, 0);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(json, m, std::regex("\"revision\":\"([0-9]+)\"")));
  const std::string future = std::to_string(std::stoull(m[1]) + 100);
  Process watch({ctlBinary(), server(), "--token=readtok", "watch", "--after=" + future});
  EXPECT_EQ(watch.wait(10s), std::optional<int>(1));
  EXPECT_NE(watch.stderrText().find("INVALID_ARGUMENT: "), std::string::npos) << watch.stderrText();
  EXPECT_NE(watch.stderrText().find("is in the future"), std::string::npos) << watch.stderrText();
}

TEST(CtlTls, MutualTlsWithTheFilesGivenAndClearErrorsWithout) {
  const std::string dir = tempDir();
  auto ssl = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "openssl");
    ASSERT_EQ(run(args).code, 0) << args[1];
  };
  // A CA, a server certificate for 127.0.0.1, a client certificate.
  ssl({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=ctl test CA",
       "-keyout", dir + "/ca.key", "-out", dir + "/ca.pem"});
  std::ofstream(dir + "/san.cnf") << "subjectAltName=IP:127.0.0.1\n";
  for (const std::string who : {"server", "client"}) {
    ssl({"req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + who, "-keyout",
         dir + "/" + who + ".key", "-out", dir + "/" + who + ".csr"});
    std::vector<std::string> sign{"x509",
                                  "-req",
                                  "-in",
                                  dir + "/" + who + ".csr",
                                  "-CA",
                                  dir + "/ca.pem",
                                  "-CAkey",
                                  dir + "/ca.key",
                                  "-CAcreateserial",
                                  "-days",
                                  "1",
                                  "-out",
                                  dir + "/" + who + ".pem"};
    if (who == "server") {
      sign.insert(sign.end(), {"-extfile", dir + "/san.cnf"});
    }
    ssl(sign);
  }
  std::ofstream(dir + "/tokens") << "tlstok read\n";
  const uint16_t grpc_port = freePort();
  Process daemon({epmdxBinary(), "-port", std::to_string(freePort()),
                  "--grpc-listen=127.0.0.1:" + std::to_string(grpc_port), "--http-listen=off",
                  "--tokens-file=" + dir + "/tokens", "--grpc-tls-cert=" + dir + "/server.pem",
                  "--grpc-tls-key=" + dir + "/server.key",
                  "--grpc-tls-client-ca=" + dir + "/ca.pem"});
  ASSERT_TRUE(waitForPort(grpc_port, 5s));
  const std::vector<std::string> base{ctlBinary(),
                                      "--server=127.0.0.1:" + std::to_string(grpc_port),
                                      "--token=tlstok", "--timeout=3"};
  auto with = [&](std::vector<std::string> extra) {
    auto argv = base;
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run(argv);
  };
  const CtlRun ok = with({"--tls-ca", dir + "/ca.pem", "--tls-cert=" + dir + "/client.pem",
                          "--tls-key=" + dir + "/client.key", "list", "-o", "json"});
  EXPECT_EQ(ok.code, 0) << ok.err;
  EXPECT_NE(ok.out.find("\"revision\":\""), std::string::npos) << ok.out;
  // No client certificate: the daemon refuses the handshake.
  const CtlRun no_cert = with({"--tls-ca=" + dir + "/ca.pem", "list"});
  EXPECT_EQ(no_cert.code, 6) << no_cert.err;
  EXPECT_EQ(no_cert.err.rfind("epmdxctl: UNAVAILABLE: ", 0), 0u) << no_cert.err;
  const CtlRun no_ca = with({"--tls-ca=" + dir + "/nope.pem", "list"});
  EXPECT_EQ(no_ca.code, 1);
  EXPECT_EQ(no_ca.err, "epmdxctl: cannot read " + dir + "/nope.pem: No such file or directory\n");
  const CtlRun half =
      with({"--tls-ca=" + dir + "/ca.pem", "--tls-cert=" + dir + "/client.pem", "list"});
  EXPECT_EQ(half.code, 2);
  EXPECT_NE(half.err.find("--tls-cert requires --tls-key"), std::string::npos) << half.err;
  std::filesystem::remove_all(dir);
}

// A daemon with no tokens file generates its admin token into the per-port file
// (tokenPathForPort); epmdxctl finds it there from --server alone.
class GeneratedTokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    xdg_ = tempDir();
    port_ = freePort();
    grpc_port_ = freePort();
    env_ = {{"XDG_RUNTIME_DIR", xdg_}, {"EPMDX_TOKEN", ""}, {"EPMDX_TOKEN_FILE", ""}};
    // The rule epmdxctl and the daemon share, seen from this process with the same directory.
    setenv("XDG_RUNTIME_DIR", xdg_.c_str(), 1);
    token_path_ = tokenPathForPort(
        [](const char* n) { return static_cast<const char*>(getenv(n)); }, grpc_port_);
  }
  void TearDown() override {
    daemon_.reset();
    std::filesystem::remove_all(xdg_);
  }

  void startDaemon() {
    // --token-out names the per-port file explicitly, so this holds whether or not the
    // daemon already picks that file by itself.
    daemon_ = std::make_unique<Process>(
        std::vector<std::string>{epmdxBinary(), "-port", std::to_string(port_),
                                 "--grpc-listen=127.0.0.1:" + std::to_string(grpc_port_),
                                 "--http-listen=off", "--token-out=" + token_path_},
        env_);
    ASSERT_TRUE(waitForPort(port_, 5s));
    ASSERT_TRUE(waitForPort(grpc_port_, 5s));
    ASSERT_TRUE(waitUntil([&] { return !readFile(token_path_).empty(); }));
  }
  void stopDaemon() {
    daemon_->signal(SIGTERM);
    ASSERT_EQ(daemon_->wait(10s), std::optional<int>(0));
    daemon_.reset();
  }
  int registerNode(const std::string& name, uint16_t port) {
    const int fd = connectTo("127.0.0.1", port_);
    sendAll(fd, frame(alive2Body(name, port)));
    EXPECT_EQ(readN(fd, 6, 2000ms).size(), 6u);
    return fd;
  }
  std::string server() const { return "--server=127.0.0.1:" + std::to_string(grpc_port_); }

  std::string xdg_;
  uint16_t port_ = 0;
  uint16_t grpc_port_ = 0;
  std::map<std::string, std::string> env_;
  std::string token_path_;
  std::unique_ptr<Process> daemon_;
};

TEST_F(GeneratedTokenTest, FindsTheDaemonsTokenByPortAndWatchSurvivesARestartWithANewToken) {
  EXPECT_EQ(token_path_, xdg_ + "/epmdx/admin-" + std::to_string(grpc_port_) + ".token");
  ASSERT_NO_FATAL_FAILURE(startDaemon());
  const std::string first_token = readFile(token_path_);
  const int a = registerNode("one", 4000);
  const CtlRun list = run({ctlBinary(), server(), "list", "-o", "names"}, env_);
  EXPECT_EQ(list.code, 0) << list.err;
  EXPECT_EQ(list.out, "one\n");

  Process watch({ctlBinary(), server(), "watch", "--initial"}, env_);
  Process listing({ctlBinary(), server(), "list", "--watch", "--no-headers"}, env_);
  ASSERT_TRUE(waitUntil([&] {
    return watch.stdoutText().find(" existing one ") != std::string::npos;
  })) << watch.stderrText();
  ASSERT_TRUE(waitUntil([&] {
    // Columns are sized for every event type up front (list --watch stays aligned).
    return std::regex_search(listing.stdoutText(), std::regex("EXISTING +one "));
  })) << listing.stdoutText()
      << listing.stderrText();
  close(a);
  ASSERT_NO_FATAL_FAILURE(stopDaemon());
  // A restarted daemon adopts the token still in its file; without the file (a rotation)
  // it makes a new one, which the clients must pick up.
  std::filesystem::remove(token_path_);
  ASSERT_NO_FATAL_FAILURE(startDaemon());  // Same ports, same file, a new token.
  EXPECT_NE(readFile(token_path_), first_token);
  const int b = registerNode("two", 4001);
  ASSERT_TRUE(waitUntil(
      [&] {
        const std::string out = watch.stdoutText();
        return out.find(" existing two ") != std::string::npos ||
               out.find(" registered two ") != std::string::npos;
      },
      20s))
      << watch.stdoutText() << watch.stderrText();
  EXPECT_TRUE(watch.running());
  EXPECT_NE(watch.stdoutText().find("resync: "), std::string::npos) << watch.stdoutText();
  EXPECT_NE(
      watch.stderrText().find("the daemon refused the token; read a new one from " + token_path_),
      std::string::npos)
      << watch.stderrText();
  // list --watch too: it lists the new daemon's nodes again.
  ASSERT_TRUE(waitUntil(
      [&] {
        for (const auto& l : lines(listing.stdoutText())) {
          if (fields(l).size() > 1 && fields(l)[1] == "two") {
            return true;
          }
        }
        return false;
      },
      20s))
      << listing.stdoutText() << listing.stderrText();
  EXPECT_TRUE(listing.running());
  EXPECT_NE(listing.stderrText().find("resync: "), std::string::npos) << listing.stderrText();
  // One-shot commands use the new token too.
  EXPECT_EQ(run({ctlBinary(), server(), "list", "-o", "names"}, env_).out, "two\n");
  close(b);
}

}  // namespace
}  // namespace epmdx::testing
