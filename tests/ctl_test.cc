// epmdxctl's pure parts: YAML scalars and documents, the port of a --server target, the
// precedence of the token sources, the fleet relay's tables (sources, the SOURCE and STALE
// columns) and coverage warnings. Then the epmdxctl binary against an in-process epmdx
// daemon (`sources`, --source and --partial=abort refused: not a fleet relay) and against a
// relay stand-in on a real gRPC socket that answers with the relay's contract
// (registry.proto: Node.source/stale, Coverage, Fleet.ListSources), to pin what the client
// sends and prints. The real relay's side is tests/integration (build/epmdx-fleet).

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include "ctl/coverage.h"
#include "ctl/output.h"
#include "ctl/server_target.h"
#include "ctl/sources.h"
#include "ctl/status.h"
#include "ctl/token_source.h"
#include "ctl/yaml.h"
#include "epmdx/v1/registry.grpc.pb.h"
#include "server/api/json.h"
#include "tests/support/net.h"
#include "tests/support/process.h"
#include "tests/support/running_app.h"

namespace epmdx::ctl {
namespace {

TEST(CtlYaml, PlainOnlyWhenNothingElseCanBeRead) {
  EXPECT_EQ(yamlString("web1"), "web1");
  EXPECT_EQ(yamlString("NODE_TYPE_NORMAL"), "NODE_TYPE_NORMAL");
  // YAML 1.1 booleans and null, numbers, timestamps, indicators, empty.
  for (const std::string s : {"yes",  "No",   "on",    "OFF",    "y",
                              "n",    "true", "null",  "~",      "123",
                              "1e3",  "0x1f", ".inf",  "-1",     "2026-11-27T07:34:16Z",
                              "a: b", "#x",   "&a",    "*a",     "!t",
                              "[x]",  "{x}",  "|",     ">",      "'q'",
                              "%x",   "",     " lead", "trail ", "a#b c",
                              "@x"}) {
    EXPECT_EQ(yamlString(s).front(), '"') << s;
  }
  EXPECT_EQ(yamlString("q\"uote\\"), "\"q\\\"uote\\\\\"");
  EXPECT_EQ(yamlString("a\nb\tc"), "\"a\\nb\\tc\"");
  EXPECT_EQ(yamlString(std::string("\x01", 1)), "\"\\x01\"");
  EXPECT_EQ(yamlString("caf\xc3\xa9"), "\"caf\xc3\xa9\"");  // UTF-8 kept as is.
  EXPECT_EQ(yamlString("x\xc2\x85y"), "\"x\\u0085y\"");     // NEL is a YAML line break.
  EXPECT_EQ(yamlString("x\xe2\x80\xa8y"), "\"x\\u2028y\"");
}

TEST(CtlYaml, DocumentFollowsTheJsonInFieldOrder) {
  v1::ListNodesResponse list;
  list.set_revision(1764075123456789);
  auto* n = list.add_nodes();
  n->set_name("web1");
  n->set_port(4000);
  n->set_extra(std::string("\x00\xff", 2));
  n->set_registration_id(17);
  n->mutable_registered_at()->set_seconds(1764075123);
  const std::string yaml = toYaml(list);
  EXPECT_EQ(yaml.rfind(
                "nodes:\n  - name: web1\n    port: 4000\n    nodeType: NODE_TYPE_UNSPECIFIED\n", 0),
            0u)
      << yaml;
  EXPECT_NE(yaml.find("\n    extra: \"AP8=\"\n"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("\n    registrationId: \"17\"\n"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("\n    registeredAt: \"2025-11-25T12:52:03Z\"\n"), std::string::npos) << yaml;
  const std::string last = "\nrevision: \"1764075123456789\"\n";
  EXPECT_EQ(yaml.substr(yaml.size() - last.size()), last) << yaml;
  v1::ListNodesResponse empty;
  EXPECT_EQ(toYaml(empty), "nodes: []\nrevision: \"0\"\n");
}

TEST(CtlServer, PortOfATarget) {
  EXPECT_EQ(targetPort("127.0.0.1:4370"), std::optional<uint16_t>(4370));
  EXPECT_EQ(targetPort("localhost:4400"), std::optional<uint16_t>(4400));
  EXPECT_EQ(targetPort("[::1]:4371"), std::optional<uint16_t>(4371));
  EXPECT_EQ(targetPort("dns:///epmdx.example:4370"), std::optional<uint16_t>(4370));
  EXPECT_EQ(targetPort("ipv4:10.0.0.5:81"), std::optional<uint16_t>(81));
  EXPECT_EQ(targetPort("localhost"), std::nullopt);
  EXPECT_EQ(targetPort("::1"), std::nullopt);
  EXPECT_EQ(targetPort("host:0"), std::nullopt);
  EXPECT_EQ(targetPort("host:70000"), std::nullopt);
  EXPECT_EQ(targetPort("host:12ab"), std::nullopt);
}

// gRPC dials 443 for a target without a port; epmdxctl means its admin port 4370.
TEST(CtlServer, AServerWithoutAPortMeansTheAdminPort) {
  EXPECT_EQ(withDefaultPort("localhost"), "localhost:4370");
  EXPECT_EQ(withDefaultPort("127.0.0.1"), "127.0.0.1:4370");
  EXPECT_EQ(withDefaultPort("::1"), "[::1]:4370");
  EXPECT_EQ(withDefaultPort("[::1]"), "[::1]:4370");
  EXPECT_EQ(withDefaultPort("dns:///epmdx.example"), "dns:///epmdx.example:4370");
  EXPECT_EQ(withDefaultPort("ipv4:10.0.0.5"), "ipv4:10.0.0.5:4370");
  EXPECT_EQ(withDefaultPort("ipv6:::1"), "ipv6:[::1]:4370");
  // A port given stays, even one gRPC will refuse; so do sockets.
  EXPECT_EQ(withDefaultPort("localhost:4400"), "localhost:4400");
  EXPECT_EQ(withDefaultPort("[::1]:4371"), "[::1]:4371");
  EXPECT_EQ(withDefaultPort("host:0"), "host:0");
  EXPECT_EQ(withDefaultPort("unix:/run/epmdx.sock"), "unix:/run/epmdx.sock");
  EXPECT_EQ(withDefaultPort(""), "");
  EXPECT_EQ(targetPort(withDefaultPort("localhost")), std::optional<uint16_t>(4370));
}

std::map<std::string, std::string>& fakeEnv() {
  static std::map<std::string, std::string> env;
  return env;
}

const char* fakeGetenv(const char* name) {
  const auto it = fakeEnv().find(name);
  return it == fakeEnv().end() ? nullptr : it->second.c_str();
}

TEST(CtlToken, PrecedenceFlagsThenEnvironmentThenThePerPortFile) {
  fakeEnv() = {{"XDG_RUNTIME_DIR", "/run/user/7"},
               {"EPMDX_TOKEN", "envtok"},
               {"EPMDX_TOKEN_FILE", "/env/file"}};
  auto a = TokenSource::resolve("flagtok", "/flag/file", fakeGetenv, "h:4400");
  EXPECT_EQ(a.token(), "flagtok");
  EXPECT_FALSE(a.fromFile());
  auto b = TokenSource::resolve("", "/flag/file", fakeGetenv, "h:4400");
  EXPECT_EQ(b.path(), "/flag/file");
  EXPECT_TRUE(b.explicitFile());
  auto c = TokenSource::resolve("", "", fakeGetenv, "h:4400");
  EXPECT_EQ(c.token(), "envtok");
  fakeEnv().erase("EPMDX_TOKEN");
  auto d = TokenSource::resolve("", "", fakeGetenv, "h:4400");
  EXPECT_EQ(d.path(), "/env/file");
  EXPECT_TRUE(d.explicitFile());
  fakeEnv().erase("EPMDX_TOKEN_FILE");
  auto e = TokenSource::resolve("", "", fakeGetenv, "h:4400");
  EXPECT_EQ(e.path(), "/run/user/7/epmdx/admin-4400.token");
  EXPECT_FALSE(e.explicitFile());
  auto f = TokenSource::resolve("", "", fakeGetenv, "unix:/run/epmdx.sock");
  EXPECT_FALSE(f.fromFile());
  EXPECT_NE(f.error().find("pass --token-file"), std::string::npos) << f.error();
}

TEST(CtlOutput, WidthsCountCodePointsAndCarryAcrossCalls) {
  EXPECT_EQ(displayWidth("caf\xc3\xa9"), 4u);
  std::vector<size_t> widths;
  EXPECT_EQ(renderRows({{"NAME", "PORT"}, {"caf\xc3\xa9s", "1"}}, &widths),
            "NAME   PORT\ncaf\xc3\xa9s  1\n");
  EXPECT_EQ(renderRows({{"a", "2"}}, &widths), "a      2\n");
}

// --- The fleet relay's tables and coverage, without a server. ---

v1::Source source(const std::string& name, v1::SourceState state, int64_t since, uint32_t nodes,
                  uint64_t revision, const std::string& address, const std::string& error = "") {
  v1::Source s;
  s.set_name(name);
  s.set_state(state);
  if (since != 0) {
    s.mutable_since()->set_seconds(since);
  }
  s.set_nodes(nodes);
  s.set_revision(revision);
  s.set_address(address);
  s.set_last_error(error);
  return s;
}

constexpr std::time_t kNow = 1764750000;

TEST(CtlSources, TheTableHasOneRowPerSourceAndItsErrorLast) {
  v1::ListSourcesResponse resp;
  *resp.add_sources() = source("pod-1", v1::LIVE, kNow - 300, 12, 41, "10.0.0.6:4370");
  *resp.add_sources() =
      source("pod-2", v1::STALE, kNow - 90, 3, 17, "10.0.0.7:4370", "connection refused");
  *resp.add_sources() = source("10.0.0.9:4370", v1::UNAVAILABLE, 0, 0, 0, "10.0.0.9:4370",
                               "UNAUTHENTICATED: unknown token");
  resp.add_discovery("dns app-headless:4370: 3 addresses at 09:00:01");
  EXPECT_EQ(sourceHeader(false), (std::vector<std::string>{"NAME", "STATE", "SINCE", "NODES",
                                                           "REVISION", "ADDRESS", "ERROR"}));
  // SINCE is an age, as list's AGE; no time: "-"; no error: "-" (never an empty cell).
  EXPECT_EQ(
      sourcesTable(resp, false, true, kNow),
      "NAME           STATE        SINCE  NODES  REVISION  ADDRESS        ERROR\n"
      "pod-1          LIVE         5m     12     41        10.0.0.6:4370  -\n"
      "pod-2          STALE        90s    3      17        10.0.0.7:4370  connection refused\n"
      "10.0.0.9:4370  UNAVAILABLE  -      0      0         10.0.0.9:4370  "
      "UNAUTHENTICATED: unknown token\n"
      "\n"
      "discovery: dns app-headless:4370: 3 addresses at 09:00:01\n");
  // --no-headers: the rows alone, for scripts.
  const std::string bare = sourcesTable(resp, false, false, kNow);
  EXPECT_EQ(bare.find("NAME"), std::string::npos) << bare;
  EXPECT_EQ(bare.find("discovery"), std::string::npos) << bare;
  EXPECT_EQ(bare.rfind("pod-1  ", 0), 0u) << bare;
  EXPECT_EQ(sourceStateName(v1::GONE), "GONE");
  EXPECT_EQ(sourceStateName(v1::SOURCE_STATE_UNSPECIFIED), "UNKNOWN");
}

TEST(CtlSources, WideAddsBootEpochDiscoveryAndAddressesBeforeTheError) {
  auto s = source("pod-1", v1::LIVE, kNow - 7200, 2, 5, "10.0.0.6:4370");
  s.set_boot_epoch(1764740000123456);
  s.set_discovered_by("dns:app-headless");
  s.add_addresses("10.0.0.6:4370");
  s.add_addresses("[fd00::6]:4370");
  EXPECT_EQ(sourceHeader(true),
            (std::vector<std::string>{"NAME", "STATE", "SINCE", "NODES", "REVISION", "ADDRESS",
                                      "BOOT-EPOCH", "DISCOVERED-BY", "ADDRESSES", "ERROR"}));
  EXPECT_EQ(sourceRow(s, true, kNow),
            (std::vector<std::string>{"pod-1", "LIVE", "2h", "2", "5", "10.0.0.6:4370",
                                      "1764740000123456", "dns:app-headless",
                                      "10.0.0.6:4370,[fd00::6]:4370", "-"}));
}

TEST(CtlSources, TheHintNamesTheSourcesOrHowToFindThem) {
  EXPECT_EQ(sourcesHint("app", {"pod-1", "pod-2"}), "app is on pod-1, pod-2: use --source=pod-1");
  EXPECT_EQ(sourcesHint("app", {}), "use --source=NAME (epmdxctl sources lists them)");
}

v1::Node relayNode(const std::string& name, const std::string& src, bool stale,
                   uint32_t port = 5001) {
  v1::Node n;
  n.set_name(name);
  n.set_port(port);
  n.set_node_type(v1::NODE_TYPE_NORMAL);
  n.set_cluster("default");
  n.set_source(src);
  n.set_stale(stale);
  n.set_host("h");
  n.mutable_registered_at()->set_seconds(kNow - 30);
  return n;
}

TEST(CtlNodeColumns, ARelaysNodesHaveSourceAfterNameAndStaleLast) {
  const auto live = relayNode("app", "pod-1", false);
  const auto stale = relayNode("app", "pod-2", true);
  // The daemon's tables are unchanged.
  EXPECT_EQ(nodeHeader(false), (std::vector<std::string>{"NAME", "PORT", "TYPE", "AGE"}));
  EXPECT_EQ(nodeHeader(false, {.cluster = true}),
            (std::vector<std::string>{"NAME", "CLUSTER", "PORT", "TYPE", "AGE"}));
  const NodeColumns relay{.source = true, .stale = true};
  EXPECT_EQ(nodeHeader(false, relay),
            (std::vector<std::string>{"NAME", "SOURCE", "PORT", "TYPE", "AGE", "STALE"}));
  EXPECT_EQ(nodeRow(live, false, kNow, false, relay),
            (std::vector<std::string>{"app", "pod-1", "5001", "normal", "30s", "no"}));
  EXPECT_EQ(nodeRow(stale, false, kNow, false, relay),
            (std::vector<std::string>{"app", "pod-2", "5001", "normal", "30s", "yes"}));
  // With several clusters: NAME SOURCE CLUSTER, a relay node's identity in that order.
  const NodeColumns both{.cluster = true, .source = true, .stale = true};
  EXPECT_EQ(nodeHeader(false, both), (std::vector<std::string>{"NAME", "SOURCE", "CLUSTER", "PORT",
                                                               "TYPE", "AGE", "STALE"}));
  EXPECT_EQ(nodeRow(stale, false, kNow, false, both)[2], "default");
  // --source chose one: SOURCE says nothing, STALE still does.
  EXPECT_EQ(nodeHeader(false, {.stale = true}),
            (std::vector<std::string>{"NAME", "PORT", "TYPE", "AGE", "STALE"}));
  // Wide: SOURCE before its CLUSTER, STALE after HOLDER; as many cells as headers.
  const auto wide = nodeHeader(true, relay);
  EXPECT_EQ(wide.at(4), "SOURCE");
  EXPECT_EQ(wide.at(5), "CLUSTER");
  EXPECT_EQ(wide.back(), "STALE");
  const auto row = nodeRow(stale, true, kNow, true, relay);
  ASSERT_EQ(row.size(), wide.size());
  EXPECT_EQ(row.at(0), "app@h");
  EXPECT_EQ(row.at(4), "pod-2");
  EXPECT_EQ(row.at(5), "default");
  EXPECT_EQ(row.back(), "yes");
}

TEST(CtlNodeColumns, ARelayIsToldByItsNodesAndTheSameNameSortsBySource) {
  google::protobuf::RepeatedPtrField<v1::Node> nodes;
  EXPECT_FALSE(fromRelay(nodes, false));
  EXPECT_TRUE(fromRelay(nodes, true));  // --source was given (and checked).
  v1::Node own;
  own.set_name("own");
  *nodes.Add() = own;
  EXPECT_FALSE(fromRelay(nodes, false));
  *nodes.Add() = relayNode("app", "pod-2", true);
  *nodes.Add() = relayNode("app", "pod-1", false);
  EXPECT_TRUE(fromRelay(nodes, false));
  const auto sorted = byName(nodes);
  EXPECT_EQ(sorted[0]->source(), "pod-1");
  EXPECT_EQ(sorted[1]->source(), "pod-2");
  EXPECT_EQ(sorted[2]->name(), "own");
}

v1::Coverage coverage(std::vector<std::string> live, std::vector<std::string> unreachable,
                      std::vector<std::string> warnings) {
  v1::Coverage c;
  for (const auto& s : live) {
    c.add_live(s);
  }
  for (const auto& s : unreachable) {
    c.add_unreachable(s);
  }
  for (const auto& s : warnings) {
    c.add_warnings(s);
  }
  return c;
}

const std::string kPod2Warning =
    "source pod-2 (10.0.0.7:4370) is STALE since 2026-12-03T09:00:00Z: connection refused; "
    "its 1 nodes are the last known";

TEST(CtlCoverage, EveryUnreachableSourceGetsAWarning) {
  EXPECT_TRUE(coverageWarnings(v1::Coverage()).empty());  // A daemon's answer.
  EXPECT_TRUE(coverageWarnings(coverage({"pod-1"}, {}, {})).empty());
  // The relay's own line, once; a source it gave none for still gets one.
  EXPECT_EQ(coverageWarnings(coverage({"pod-1"}, {"pod-2", "pod-3"}, {kPod2Warning})),
            (std::vector<std::string>{
                kPod2Warning, "source pod-3 cannot be reached now; its nodes are the last known"}));
}

TEST(CtlCoverage, AWatchSaysOnlyWhatChanged) {
  // Seeded with what the list printed: the stream's first coverage repeats nothing.
  CoverageNotes notes(coverage({"pod-1"}, {"pod-2"}, {kPod2Warning}));
  EXPECT_TRUE(notes.update(coverage({"pod-1"}, {"pod-2"}, {kPod2Warning})).empty());
  // pod-3 becomes unreachable: only its line.
  const std::string pod3 = "source pod-3 (10.0.0.8:4370) is STALE since ...: timeout";
  EXPECT_EQ(notes.update(coverage({"pod-1"}, {"pod-2", "pod-3"}, {kPod2Warning, pod3})),
            (std::vector<std::string>{"warning: " + pod3}));
  // pod-2 is back, pod-3 left discovery.
  EXPECT_EQ(notes.update(coverage({"pod-1", "pod-2"}, {}, {})),
            (std::vector<std::string>{"source pod-2 is live again",
                                      "source pod-3 is no longer covered"}));
  EXPECT_TRUE(notes.update(coverage({"pod-1", "pod-2"}, {}, {})).empty());
  // A fresh watch tells everything it finds.
  CoverageNotes fresh;
  EXPECT_EQ(fresh.update(coverage({}, {"pod-2"}, {kPod2Warning})),
            (std::vector<std::string>{"warning: " + kPod2Warning}));
}

// --- The epmdxctl binary against servers. ---

using namespace std::chrono_literals;
using testing::epmdxctlBinary;
using testing::eventually;
using testing::Process;

struct CtlRun {
  int code = -1;
  std::string out;
  std::string err;
};

CtlRun ctl(const std::string& server, std::vector<std::string> args,
           const std::string& token_file = "") {
  std::vector<std::string> argv{epmdxctlBinary(), "--server=" + server, "--timeout=10"};
  argv.push_back(token_file.empty() ? "--token=any" : "--token-file=" + token_file);
  argv.insert(argv.end(), args.begin(), args.end());
  Process p(argv, {{"EPMDX_SOURCE", ""}, {"EPMDX_CLUSTER", ""}});
  const auto code = p.wait(30s);
  return {code.value_or(-1), p.stdoutText(), p.stderrText()};
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

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
    ++n;
  }
  return n;
}

// An epmdx daemon (the real App, in process): it has no Fleet service.
class CtlAgainstDaemon : public ::testing::Test {
 protected:
  void SetUp() override {
    auto o = testing::RunningApp::testOptions();
    token_file_ = o.token_out;
    app_ = std::make_unique<testing::RunningApp>(o);
    server_ = "127.0.0.1:" + std::to_string(app_->app().grpcPort());
  }
  void TearDown() override {
    app_.reset();
    unlink(token_file_.c_str());
  }
  CtlRun run(std::vector<std::string> args) { return ctl(server_, std::move(args), token_file_); }
  int registerNode(const std::string& name, uint16_t port) {
    const int fd = testing::connectTo("127.0.0.1", app_->port());
    testing::sendAll(fd, testing::frame(testing::alive2Body(name, port)));
    EXPECT_EQ(testing::readN(fd, 6, 2000ms).size(), 6u);
    return fd;
  }

  std::string token_file_;
  std::string server_;
  std::unique_ptr<testing::RunningApp> app_;
};

TEST_F(CtlAgainstDaemon, SourcesSaysItIsNotARelayWithItsOwnExitCode) {
  for (const char* format : {"table", "json", "yaml", "names"}) {
    const CtlRun r = run({"sources", std::string("-o=") + format});
    EXPECT_EQ(r.code, ExitNotRelay) << format << r.err;
    EXPECT_EQ(r.code, 7);  // Documented: scripts compare with the number.
    EXPECT_EQ(r.out, "") << format;
    EXPECT_EQ(r.err,
              "epmdxctl: this server is not a fleet relay (epmdx-fleet): it has no sources\n");
  }
  // The daemon has no Fleet service at all: the verdict needs no token.
  const CtlRun anonymous = ctl(server_, {"sources"});
  EXPECT_EQ(anonymous.code, ExitNotRelay) << anonymous.err;
}

TEST_F(CtlAgainstDaemon, RelayOnlyOptionsAreRefusedBeforeAnythingHappens) {
  const int fd = registerNode("app", 5001);
  // A daemon would ignore `source` and evict its own app: refused before the call.
  const CtlRun evict = run({"--source=pod-1", "evict", "app"});
  EXPECT_EQ(evict.code, 7) << evict.err;
  EXPECT_EQ(evict.err,
            "epmdxctl: this server is not a fleet relay (epmdx-fleet): --source needs one\n");
  EXPECT_EQ(run({"get", "app"}).code, 0);  // Still registered.
  // Each command that takes it, global options before or after the command.
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"list", "--source=pod-1"},
                                             {"--source", "pod-1", "list", "--watch"},
                                             {"get", "app", "--source=pod-1"},
                                             {"--source=pod-1", "events"},
                                             {"--source=pod-1", "holds"},
                                             {"--source=pod-1", "lift", "app"},
                                             {"--source=pod-1", "watch"},
                                             {"--source=pod-1", "clusters"}}) {
    const CtlRun r = run(args);
    EXPECT_EQ(r.code, 7) << args.front() << " " << args.back() << r.err;
    EXPECT_EQ(r.out, "");
  }
  const CtlRun abort = run({"list", "--partial=abort"});
  EXPECT_EQ(abort.code, 7) << abort.err;
  EXPECT_NE(abort.err.find("--partial=abort needs one"), std::string::npos) << abort.err;
  // The default (warn) and the daemon's own tables: no SOURCE, no STALE.
  const CtlRun list = run({"list", "--partial=warn"});
  ASSERT_EQ(list.code, 0) << list.err;
  EXPECT_EQ(list.err, "");
  EXPECT_EQ(fields(lines(list.out).at(0)),
            (std::vector<std::string>{"NAME", "PORT", "TYPE", "AGE"}));
  EXPECT_EQ(fields(lines(run({"get", "app"}).out).at(0)),
            (std::vector<std::string>{"NAME", "PORT", "TYPE", "AGE"}));
  // A daemon's precondition failure gets no --source hint (its nodes have no source).
  const CtlRun pre = run({"evict", "app", "--if-registration=999"});
  EXPECT_EQ(pre.code, ExitPrecondition);
  EXPECT_EQ(pre.err.find("--source"), std::string::npos) << pre.err;
  close(fd);
}

TEST(CtlRelayOptions, PartialTakesWarnOrAbortAndCompletionKnowsThem) {
  // Usage errors come before any connection (none is listening on this port).
  const std::string nowhere = "127.0.0.1:" + std::to_string(testing::freePort());
  const CtlRun bad = ctl(nowhere, {"list", "--partial=sometimes"});
  EXPECT_EQ(bad.code, ExitUsage);
  EXPECT_NE(bad.err.find("\"sometimes\" is not one of warn, abort"), std::string::npos) << bad.err;
  EXPECT_EQ(ctl(nowhere, {"get", "app", "--partial=abort"}).code, ExitUsage);  // list's only.
  const CtlRun sources_bad = ctl(nowhere, {"sources", "-o", "xml"});
  EXPECT_EQ(sources_bad.code, ExitUsage);
  EXPECT_NE(sources_bad.err.find("epmdxctl sources --help"), std::string::npos) << sources_bad.err;
  // A relay-only option against nothing: the connection's failure, not a relay verdict.
  EXPECT_EQ(ctl(nowhere, {"--source=pod-1", "list"}).code, ExitUnavailable);

  const CtlRun help = ctl(nowhere, {"--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("--source"), std::string::npos);
  EXPECT_NE(help.out.find("  sources "), std::string::npos) << help.out;
  EXPECT_NE(help.out.find("7 not a fleet relay"), std::string::npos) << help.out;
  EXPECT_NE(ctl(nowhere, {"list", "--help"}).out.find("warn|abort"), std::string::npos);

  const CtlRun script = ctl(nowhere, {"completion", "bash"});
  ASSERT_EQ(script.code, 0);
  // --source's values come from the server's sources, --partial's are fixed.
  EXPECT_NE(script.out.find("    --source)\n      COMPREPLY=($(compgen -W \"$(\"${COMP_WORDS[0]}\" "
                            "sources -o names 2>/dev/null)\" -- \"$cur\"))\n      return ;;\n"),
            std::string::npos)
      << script.out;
  EXPECT_NE(script.out.find("    --partial)\n      COMPREPLY=($(compgen -W \"warn abort\""),
            std::string::npos);
  EXPECT_NE(script.out.find("sources:-o | sources:--output)"), std::string::npos);
  const size_t list_words = script.out.find("    list)\n      words=\"");
  ASSERT_NE(list_words, std::string::npos);
  const std::string list_line =
      script.out.substr(list_words, script.out.find('\n', list_words + 12) - list_words);
  EXPECT_NE(list_line.find("--partial"), std::string::npos) << list_line;
  EXPECT_NE(list_line.find("--source"), std::string::npos) << list_line;
}

// --- A relay stand-in: the contract's answers on a real gRPC socket. ---

// What the stand-in was asked, for the tests to check what epmdxctl sends.
struct Asked {
  std::mutex mu;
  std::vector<v1::ListNodesRequest> list;
  std::vector<v1::GetNodeRequest> get;
  std::vector<v1::EvictNodeRequest> evict;
  std::vector<v1::WatchNodesRequest> watch;
  std::vector<v1::ListEventsRequest> events;
  std::vector<v1::ListHoldsRequest> holds;
  std::vector<v1::LiftHoldRequest> lift;
};

// Two sources: pod-1 (LIVE) with app and web, pod-2 (STALE) with app. app therefore lives on
// two sources: GetNode, EvictNode and LiftHold without a source are FAILED_PRECONDITION.
class RelayRegistry final : public v1::Registry::Service {
 public:
  explicit RelayRegistry(Asked& asked) : asked_(asked) {}

  static v1::Coverage listCoverage() { return coverage({"pod-1"}, {"pod-2"}, {kPod2Warning}); }

  grpc::Status ListNodes(grpc::ServerContext*, const v1::ListNodesRequest* req,
                         v1::ListNodesResponse* resp) override {
    record(asked_.list, *req);
    if (req->partial() == v1::PARTIAL_ABORT) {
      return {grpc::StatusCode::UNAVAILABLE,
              "the answer would miss source pod-2 (10.0.0.7:4370): connection refused"};
    }
    for (const auto& n : nodes()) {
      if ((req->source().empty() || req->source() == n.source()) &&
          (req->cluster().empty() || req->cluster() == n.cluster())) {
        *resp->add_nodes() = n;
      }
    }
    resp->set_revision(99);
    *resp->mutable_coverage() =
        req->source() == "pod-1" ? coverage({"pod-1"}, {}, {}) : listCoverage();
    return grpc::Status::OK;
  }

  grpc::Status GetNode(grpc::ServerContext*, const v1::GetNodeRequest* req,
                       v1::Node* resp) override {
    record(asked_.get, *req);
    return lookup(req->name(), req->source(), resp);
  }

  grpc::Status EvictNode(grpc::ServerContext*, const v1::EvictNodeRequest* req,
                         v1::EvictNodeResponse* resp) override {
    record(asked_.evict, *req);
    resp->set_revision(102);
    return lookup(req->name(), req->source(), resp->mutable_node());
  }

  grpc::Status ListClusters(grpc::ServerContext*, const v1::ListClustersRequest*,
                            v1::ListClustersResponse* resp) override {
    for (const char* src : {"pod-1", "pod-2"}) {  // Each source's default cluster.
      auto* c = resp->add_clusters();
      c->set_name("default");
      c->set_port(4369);
      c->set_serving(true);
      c->set_source(src);
    }
    return grpc::Status::OK;
  }

  grpc::Status ListEvents(grpc::ServerContext*, const v1::ListEventsRequest* req,
                          v1::ListEventsResponse* resp) override {
    record(asked_.events, *req);
    auto* e = resp->add_events();
    e->set_type(v1::NodeEvent::REGISTERED);
    e->set_revision(98);
    *e->mutable_node() = nodes()[0];
    e->mutable_time()->set_seconds(kNow);
    resp->set_revision(99);
    return grpc::Status::OK;
  }

  grpc::Status ListHolds(grpc::ServerContext*, const v1::ListHoldsRequest* req,
                         v1::ListHoldsResponse* resp) override {
    record(asked_.holds, *req);
    for (const char* src : {"pod-1", "pod-2"}) {
      auto* h = resp->add_holds();
      h->set_name("old");
      h->set_cluster("default");
      h->set_source(src);
      h->set_actor("ops@10.0.0.1:5000");
      h->set_reason("investigating");
    }
    return grpc::Status::OK;
  }

  grpc::Status LiftHold(grpc::ServerContext*, const v1::LiftHoldRequest* req,
                        v1::LiftHoldResponse* resp) override {
    record(asked_.lift, *req);
    if (req->source().empty()) {
      return {grpc::StatusCode::FAILED_PRECONDITION, "old is held on pod-1, pod-2"};
    }
    resp->mutable_hold()->set_name(req->name());
    resp->set_revision(103);
    return grpc::Status::OK;
  }

  // The first message carries the list's coverage (nothing new), then after release() an
  // event and the coverage with pod-2 back; then the stream stays open until stop().
  grpc::Status WatchNodes(grpc::ServerContext*, const v1::WatchNodesRequest* req,
                          grpc::ServerWriter<v1::WatchNodesResponse>* writer) override {
    record(asked_.watch, *req);
    v1::WatchNodesResponse first;
    first.set_revision(99);
    *first.mutable_coverage() = listCoverage();
    writer->Write(first);
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return released_ || stopping_; });
    if (!stopping_) {
      v1::WatchNodesResponse next;
      auto* e = next.add_events();
      e->set_type(v1::NodeEvent::REGISTERED);
      e->set_revision(100);
      *e->mutable_node() = relayNode("late", "pod-1", false, 5009);
      next.set_revision(100);
      *next.mutable_coverage() = coverage({"pod-1", "pod-2"}, {}, {});
      writer->Write(next);
    }
    cv_.wait(lock, [&] { return stopping_; });
    return {grpc::StatusCode::UNAVAILABLE, "stopping"};
  }

  void release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  void stop() {
    std::lock_guard lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }

 private:
  static std::vector<v1::Node> nodes() {
    return {relayNode("app", "pod-1", false, 5001), relayNode("web", "pod-1", false, 5003),
            relayNode("app", "pod-2", true, 5002)};
  }

  static grpc::Status lookup(const std::string& name, const std::string& src, v1::Node* out) {
    std::vector<v1::Node> found;
    for (const auto& n : nodes()) {
      if (n.name() == name && (src.empty() || n.source() == src)) {
        found.push_back(n);
      }
    }
    if (found.empty()) {
      return {grpc::StatusCode::NOT_FOUND, "no node named \"" + name + "\""};
    }
    if (found.size() > 1) {
      return {grpc::StatusCode::FAILED_PRECONDITION,
              name + " is registered on two sources: pod-1, pod-2"};
    }
    *out = found.front();
    out->set_registration_id(7);
    return grpc::Status::OK;
  }

  template <class T>
  void record(std::vector<T>& to, const T& req) {
    std::lock_guard lock(asked_.mu);
    to.push_back(req);
  }

  Asked& asked_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
  bool stopping_ = false;
};

class RelayFleet final : public v1::Fleet::Service {
 public:
  static v1::ListSourcesResponse sources() {
    v1::ListSourcesResponse resp;
    const std::time_t now = std::time(nullptr);
    *resp.add_sources() = source("pod-1", v1::LIVE, now - 300, 2, 41, "10.0.0.6:4370");
    *resp.add_sources() =
        source("pod-2", v1::STALE, now - 90, 1, 17, "10.0.0.7:4370", "connection refused");
    resp.set_revision(99);
    resp.add_discovery("flag: 2 sources");
    return resp;
  }
  grpc::Status ListSources(grpc::ServerContext*, const v1::ListSourcesRequest*,
                           v1::ListSourcesResponse* resp) override {
    *resp = sources();
    return grpc::Status::OK;
  }
};

class CtlAgainstRelay : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&registry_);
    builder.RegisterService(&fleet_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port, 0);
    address_ = "127.0.0.1:" + std::to_string(port);
  }
  void TearDown() override {
    registry_.stop();
    server_->Shutdown(std::chrono::system_clock::now() + 2s);
  }
  CtlRun run(std::vector<std::string> args) { return ctl(address_, std::move(args)); }

  Asked asked_;
  RelayRegistry registry_{asked_};
  RelayFleet fleet_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

TEST_F(CtlAgainstRelay, SourcesInEveryFormat) {
  const CtlRun table = run({"sources"});
  ASSERT_EQ(table.code, 0) << table.err;
  const auto rows = lines(table.out);
  ASSERT_EQ(rows.size(), 5u) << table.out;
  EXPECT_EQ(fields(rows[0]), (std::vector<std::string>{"NAME", "STATE", "SINCE", "NODES",
                                                       "REVISION", "ADDRESS", "ERROR"}));
  EXPECT_EQ(fields(rows[1]),
            (std::vector<std::string>{"pod-1", "LIVE", "5m", "2", "41", "10.0.0.6:4370", "-"}));
  EXPECT_EQ(fields(rows[2]), (std::vector<std::string>{"pod-2", "STALE", "90s", "1", "17",
                                                       "10.0.0.7:4370", "connection", "refused"}));
  EXPECT_EQ(rows[3], "");
  EXPECT_EQ(rows[4], "discovery: flag: 2 sources");
  EXPECT_EQ(lines(run({"sources", "--no-headers"}).out).size(), 2u);
  EXPECT_EQ(run({"sources", "-o", "names"}).out, "pod-1\npod-2\n");
  // JSON is the canonical mapping, as GET /v1/sources prints it.
  const CtlRun json = run({"sources", "-o", "json"});
  ASSERT_EQ(json.code, 0) << json.err;
  v1::ListSourcesResponse parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json.out, &parsed).ok()) << json.out;
  EXPECT_EQ(parsed.sources(1).state(), v1::STALE);
  EXPECT_EQ(parsed.sources(1).last_error(), "connection refused");
  EXPECT_NE(json.out.find("\"state\":\"LIVE\""), std::string::npos) << json.out;
  EXPECT_NE(json.out.find("\"revision\":\"99\""), std::string::npos) << json.out;
  const CtlRun yaml = run({"sources", "-o", "yaml"});
  EXPECT_EQ(yaml.out.rfind("sources:\n  - name: pod-1\n", 0), 0u) << yaml.out;
  EXPECT_NE(yaml.out.find("    state: STALE\n"), std::string::npos) << yaml.out;
}

TEST_F(CtlAgainstRelay, ListHasSourceAndStaleColumnsAndWarnsOnStderrOnly) {
  const CtlRun list = run({"list"});
  ASSERT_EQ(list.code, 0) << list.err;
  const auto rows = lines(list.out);
  ASSERT_EQ(rows.size(), 4u) << list.out;
  // Each source's "default" is one cluster name: no CLUSTER column.
  EXPECT_EQ(fields(rows[0]),
            (std::vector<std::string>{"NAME", "SOURCE", "PORT", "TYPE", "AGE", "STALE"}));
  EXPECT_EQ(fields(rows[1]).at(1), "pod-1");
  EXPECT_EQ(fields(rows[1]).back(), "no");
  EXPECT_EQ(fields(rows[2]).at(1), "pod-2");
  EXPECT_EQ(fields(rows[2]).back(), "yes");
  EXPECT_EQ(fields(rows[3]).at(0), "web");
  EXPECT_EQ(list.err, "epmdxctl: warning: " + kPod2Warning + "\n");
  {
    std::lock_guard lock(asked_.mu);
    ASSERT_EQ(asked_.list.size(), 1u);
    EXPECT_EQ(asked_.list[0].source(), "");
    EXPECT_EQ(asked_.list[0].partial(), v1::PARTIAL_WARN);
  }
  // JSON keeps the relay's answer, coverage included; the warning still goes to stderr.
  const CtlRun json = run({"list", "-o", "json"});
  v1::ListNodesResponse parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json.out, &parsed).ok()) << json.out;
  EXPECT_EQ(parsed.coverage().unreachable(0), "pod-2");
  EXPECT_TRUE(parsed.nodes(2).stale());
  EXPECT_EQ(count(json.err, "epmdxctl: warning: "), 1u) << json.err;
  // Wide: SOURCE before CLUSTER.
  const auto wide = fields(lines(run({"list", "-o", "wide"}).out).at(0));
  EXPECT_EQ(wide.at(4), "SOURCE");
  EXPECT_EQ(wide.at(5), "CLUSTER");
  EXPECT_EQ(wide.back(), "STALE");
}

TEST_F(CtlAgainstRelay, SourceChoosesOneAndAnUnknownOneIsNamedAsSuch) {
  const CtlRun one = run({"--source=pod-1", "list"});
  ASSERT_EQ(one.code, 0) << one.err;
  EXPECT_EQ(one.err, "");  // pod-1 is LIVE: nothing to warn about.
  EXPECT_EQ(fields(lines(one.out).at(0)),
            (std::vector<std::string>{"NAME", "PORT", "TYPE", "AGE", "STALE"}));
  EXPECT_EQ(lines(one.out).size(), 3u) << one.out;
  {
    std::lock_guard lock(asked_.mu);
    ASSERT_EQ(asked_.list.size(), 1u);
    EXPECT_EQ(asked_.list[0].source(), "pod-1");
  }
  const CtlRun none = run({"--source=pod-9", "list"});
  EXPECT_EQ(none.code, ExitNotFound);
  EXPECT_EQ(none.err,
            "epmdxctl: no source named \"pod-9\" on this relay (its sources: pod-1, pod-2)\n");
  // The other commands send it too.
  EXPECT_EQ(run({"--source=pod-1", "events"}).code, 0);
  EXPECT_EQ(run({"--source=pod-2", "holds"}).code, 0);
  EXPECT_EQ(run({"--source=pod-2", "lift", "old"}).code, 0);
  std::lock_guard lock(asked_.mu);
  ASSERT_EQ(asked_.events.size(), 1u);
  EXPECT_EQ(asked_.events[0].source(), "pod-1");
  ASSERT_EQ(asked_.holds.size(), 1u);
  EXPECT_EQ(asked_.holds[0].source(), "pod-2");
  ASSERT_EQ(asked_.lift.size(), 1u);
  EXPECT_EQ(asked_.lift[0].source(), "pod-2");
}

TEST_F(CtlAgainstRelay, PartialAbortFailsAsUnavailable) {
  const CtlRun r = run({"list", "--partial=abort"});
  EXPECT_EQ(r.code, ExitUnavailable);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("epmdxctl: UNAVAILABLE: the answer would miss source pod-2"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("--partial=abort: the relay cannot reach every source"), std::string::npos)
      << r.err;
  std::lock_guard lock(asked_.mu);
  ASSERT_EQ(asked_.list.size(), 1u);
  EXPECT_EQ(asked_.list[0].partial(), v1::PARTIAL_ABORT);
}

TEST_F(CtlAgainstRelay, ANameOnTwoSourcesAsksForSource) {
  const CtlRun get = run({"get", "app"});
  EXPECT_EQ(get.code, ExitPrecondition);
  EXPECT_EQ(get.err,
            "epmdxctl: FAILED_PRECONDITION: app is registered on two sources: pod-1, pod-2 (app "
            "is on pod-1, pod-2: use --source=pod-1)\n");
  const CtlRun evict = run({"evict", "app"});
  EXPECT_EQ(evict.code, ExitPrecondition);
  EXPECT_NE(evict.err.find("use --source=pod-1"), std::string::npos) << evict.err;
  const CtlRun lift = run({"lift", "old"});
  EXPECT_EQ(lift.code, ExitPrecondition);
  EXPECT_NE(lift.err.find("(old is on pod-1, pod-2: use --source=pod-1)"), std::string::npos)
      << lift.err;
  // With --source: the one node; a stale one is said so on stderr.
  const CtlRun stale = run({"--source=pod-2", "get", "app"});
  ASSERT_EQ(stale.code, 0) << stale.err;
  EXPECT_EQ(stale.err,
            "epmdxctl: warning: app@h is stale: its source pod-2 cannot be reached now; this is "
            "its last known registration\n");
  const auto rows = lines(stale.out);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(fields(rows[0]), (std::vector<std::string>{"NAME", "PORT", "TYPE", "AGE", "STALE"}));
  EXPECT_EQ(fields(rows[1]).back(), "yes");
  const CtlRun evicted = run({"--source=pod-1", "evict", "app", "--reason=hung"});
  ASSERT_EQ(evicted.code, 0) << evicted.err;
  EXPECT_EQ(evicted.out, "evicted app on pod-1 (registration 7) at revision 102\n");
  std::lock_guard lock(asked_.mu);
  ASSERT_EQ(asked_.evict.size(), 2u);
  EXPECT_EQ(asked_.evict[1].source(), "pod-1");
  EXPECT_EQ(asked_.evict[1].reason(), "hung");
  EXPECT_EQ(asked_.get.back().source(), "pod-2");
}

TEST_F(CtlAgainstRelay, EventsHoldsAndClustersHaveASourceColumn) {
  const auto events = lines(run({"events"}).out);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(fields(events[0]), (std::vector<std::string>{"TIME", "REVISION", "TYPE", "NAME",
                                                         "SOURCE", "REASON", "ACTOR", "DETAIL"}));
  EXPECT_EQ(fields(events[1]).at(4), "pod-1");
  EXPECT_EQ(fields(lines(run({"--source=pod-1", "events"}).out).at(0)).size(), 7u);
  const auto holds = lines(run({"holds"}).out);
  ASSERT_EQ(holds.size(), 3u);
  EXPECT_EQ(fields(holds[0]),
            (std::vector<std::string>{"NAME", "SOURCE", "CLUSTER", "EXPIRES-IN", "BY", "REASON"}));
  EXPECT_EQ(fields(holds[2]).at(1), "pod-2");
  const auto clusters = lines(run({"clusters"}).out);
  ASSERT_EQ(clusters.size(), 3u);
  EXPECT_EQ(fields(clusters[0]).at(1), "SOURCE");
  EXPECT_EQ(fields(clusters[2]).at(1), "pod-2");
  const auto one = lines(run({"--source=pod-2", "clusters"}).out);
  ASSERT_EQ(one.size(), 2u);  // pod-2's only, and no SOURCE column.
  EXPECT_EQ(fields(one[0]).at(1), "PORT");
}

TEST_F(CtlAgainstRelay, ListWatchKeepsTheColumnsAndTellsCoverageChangesOnce) {
  Process watch({epmdxctlBinary(), "--server=" + address_, "--token=any", "list", "--watch"});
  ASSERT_TRUE(eventually([&] { return lines(watch.stdoutText()).size() >= 4; }))
      << watch.stdoutText() << watch.stderrText();
  EXPECT_EQ(fields(lines(watch.stdoutText())[0]),
            (std::vector<std::string>{"EVENT", "NAME", "SOURCE", "PORT", "TYPE", "AGE", "STALE"}));
  // The stream's first message repeats the list's coverage: no second warning.
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(asked_.mu);
    return !asked_.watch.empty();
  }));
  registry_.release();
  ASSERT_TRUE(eventually([&] { return lines(watch.stdoutText()).size() >= 5; }))
      << watch.stdoutText();
  const auto row = fields(lines(watch.stdoutText())[4]);
  EXPECT_EQ(row, (std::vector<std::string>{"REGISTERED", "late", "pod-1", "5009", "normal",
                                           row.at(5), "no"}));
  ASSERT_TRUE(eventually([&] {
    return watch.stderrText().find("source pod-2 is live again") != std::string::npos;
  })) << watch.stderrText();
  EXPECT_EQ(watch.stderrText(),
            "epmdxctl: warning: " + kPod2Warning + "\nepmdxctl: source pod-2 is live again\n");
  std::lock_guard lock(asked_.mu);
  EXPECT_EQ(asked_.watch[0].after_revision(), 99u);
  EXPECT_EQ(asked_.watch[0].source(), "");
}

TEST_F(CtlAgainstRelay, WatchLinesEndWithTheSource) {
  Process watch(
      {epmdxctlBinary(), "--server=" + address_, "--token=any", "--source=pod-1", "watch"});
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(asked_.mu);
    return !asked_.watch.empty();
  }));
  registry_.release();
  ASSERT_TRUE(eventually([&] { return !watch.stdoutText().empty(); })) << watch.stderrText();
  EXPECT_EQ(watch.stdoutText(),
            "100 registered late port=5009 id=0 creation=0 peer= source=pod-1\n");
  // A fresh watch tells the coverage it finds first.
  EXPECT_NE(watch.stderrText().find("epmdxctl: warning: " + kPod2Warning), std::string::npos)
      << watch.stderrText();
  std::lock_guard lock(asked_.mu);
  EXPECT_EQ(asked_.watch[0].source(), "pod-1");
}

}  // namespace
}  // namespace epmdx::ctl
