// Node.holder with real OTP 25 nodes (--holder-interval): the holder of each registration is
// the beam.smp of its erl, in the registry, REST, `epmdxctl get -o wide` and the audit line
// of an eviction; a stopped VM shows as "stopped"; watchers learn the holder and the node's
// host from a HOLDER_CHANGED event.

#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>
#include <thread>

#include "epmdx/v1/registry.pb.h"
#include "server/api/node_host.h"
#include "tests/support/app_with_nodes.h"
#include "tests/support/erlang.h"
#include "tests/support/net.h"
#include "tests/support/process.h"
#include "tests/support/running_app.h"
#include "tests/support/sse_client.h"

namespace epmdx::testing {
namespace {

using namespace std::chrono_literals;
using registry::HolderFact;

class NodeHolderTest : public AppWithNodes {
 protected:
  void SetUp() override {
    auto o = RunningApp::testOptions();
    o.holder_interval_s = 1;
    startApp(o);
  }
};

TEST_F(NodeHolderTest, TheHolderOfEachRegistrationIsItsBeamSmp) {
  std::vector<std::string> names;
  for (int i = 0; i < 3; ++i) {
    names.push_back("holder" + std::to_string(i) + "x" + std::to_string(app_->port()));
    startNode(names.back(), "io:format(\"pid ~s~n\", [os:getpid()]), timer:sleep(120000).");
  }
  for (size_t i = 0; i < names.size(); ++i) {
    std::smatch m;
    ASSERT_TRUE(eventually([&] {
      const std::string out = nodes_[i]->stdoutText();
      return std::regex_search(out, m, std::regex("pid (\\d+)\n"));
    })) << nodes_[i]->stderrText();
    const int vm_pid = std::stoi(m[1]);
    registry::RegistrationPtr r;
    ASSERT_TRUE(eventually([&] {
      r = reg().find(names[i]);
      return r && r->holder && r->holder->status == HolderFact::Status::Found;
    })) << names[i];
    ASSERT_EQ(r->holder->processes.size(), 1u);
    const auto& p = r->holder->processes[0];
    EXPECT_EQ(p.pid, vm_pid) << names[i];
    EXPECT_EQ(p.pid, nodes_[i]->pid()) << "erl execs beam.smp in the same process";
    EXPECT_EQ(p.command, "beam.smp");
    EXPECT_NE(p.command_line.find("-sname " + names[i]), std::string::npos) << p.command_line;
    EXPECT_EQ(p.uid, getuid());
    EXPECT_FALSE(p.user.empty());
    EXPECT_TRUE(p.state == "sleeping" || p.state == "running") << p.state;
  }

  // REST and epmdxctl show it.
  httplib::Client http("127.0.0.1", app_->app().httpPort());
  auto got = http.Get("/v1/nodes/" + names[0]);
  ASSERT_TRUE(got);
  EXPECT_NE(got->body.find("\"status\":\"FOUND\""), std::string::npos) << got->body;
  EXPECT_NE(got->body.find("\"command\":\"beam.smp\""), std::string::npos) << got->body;
  EXPECT_NE(got->body.find("\"pid\":" + std::to_string(nodes_[0]->pid())), std::string::npos)
      << got->body;
  const auto [code, wide] =
      runCommand({epmdxctlBinary(), "--server=127.0.0.1:" + std::to_string(app_->app().grpcPort()),
                  "--token=admintok", "get", names[0], "-o", "wide", "--no-headers"});
  EXPECT_EQ(code, 0);
  EXPECT_NE(wide.find(std::to_string(nodes_[0]->pid()) + "/beam.smp("), std::string::npos) << wide;

  // A stopped VM: the holder's state says so.
  nodes_[1]->signal(SIGSTOP);
  EXPECT_TRUE(eventually([&] {
    auto r = reg().find(names[1]);
    return r && r->holder && !r->holder->processes.empty() &&
           r->holder->processes[0].state == "stopped";
  }));

  // The eviction's audit line names the holder.
  auto evicted = http.Delete("/v1/nodes/" + names[1], {{"Authorization", "Bearer admintok"}});
  ASSERT_TRUE(evicted);
  EXPECT_EQ(evicted->status, 200);
  std::string audit;
  ASSERT_TRUE(eventually([&] {
    audit = readFile(dir_ + "/audit.jsonl");
    return !audit.empty();
  }));
  EXPECT_NE(audit.find("\"pid\":" + std::to_string(nodes_[1]->pid())), std::string::npos) << audit;
  EXPECT_NE(audit.find("\"state\":\"stopped\""), std::string::npos) << audit;
}

// Node.host is what erlang:node() says after the '@', for -sname (the short host name) and
// for -name with an explicit host, read from the holder's command line.
TEST_F(NodeHolderTest, TheHostIsWhatErlangNodeSays) {
  const std::string suffix = "x" + std::to_string(app_->port());
  const std::vector<std::pair<std::string, std::string>> flags{{"-sname", "short" + suffix},
                                                               {"-name", "long" + suffix}};
  for (const auto& [flag, name] : flags) {
    startNode(flag == "-name" ? name + "@127.0.0.1" : name,
              "io:format(\"node ~s~n\", [node()]), timer:sleep(120000).", flag);
  }
  httplib::Client http("127.0.0.1", app_->app().httpPort());
  for (size_t i = 0; i < flags.size(); ++i) {
    const std::string& name = flags[i].second;
    std::smatch m;
    std::string out;  // Outlives the match, which points into it.
    ASSERT_TRUE(eventually([&] {
      out = nodes_[i]->stdoutText();
      return std::regex_search(out, m, std::regex("node ([^@\n]+)@([^\n]+)\n"));
    })) << nodes_[i]->stderrText();
    ASSERT_EQ(m[1], name);
    const std::string erlang_host = m[2];
    // beam.smp's own /proc/PID/cmdline (NUL-separated) names the node as erl was told.
    const auto parsed =
        api::parseNodeName(readFile("/proc/" + std::to_string(nodes_[i]->pid()) + "/cmdline"));
    ASSERT_TRUE(parsed) << flags[i].first;
    EXPECT_EQ(parsed->name, name);
    EXPECT_EQ(parsed->long_names, flags[i].first == "-name");
    // Once the holder is looked up, the API's host is Erlang's.
    v1::Node node;
    ASSERT_TRUE(eventually([&] {
      auto got = http.Get("/v1/nodes/" + name);
      node.Clear();
      return got && got->status == 200 &&
             google::protobuf::util::JsonStringToMessage(got->body, &node).ok() &&
             node.holder().status() == v1::FOUND;
    })) << name;
    EXPECT_EQ(node.host(), erlang_host) << name;
    const auto [code, row] = runCommand(
        {epmdxctlBinary(), "--server=127.0.0.1:" + std::to_string(app_->app().grpcPort()),
         "--token=admintok", "get", name, "--no-headers"});
    EXPECT_EQ(code, 0);
    EXPECT_EQ(row.rfind(name + "@" + erlang_host + " ", 0), 0u) << row;
  }
  EXPECT_EQ(reg().find(flags[1].second)->holder->node_host, "127.0.0.1");
}

// A node started with `-name lg@127.0.0.1` registers as "lg" before its holder is looked up,
// so watchers first see it on the daemon's host; the holder monitor's HOLDER_CHANGED tells
// them the holder and the real host, on every watch surface: gRPC (`epmdxctl watch`,
// `epmdxctl list --watch`) and SSE.
TEST_F(NodeHolderTest, WatchersLearnTheHolderAndHostFromAHolderChangedEvent) {
  const std::string name = "lg" + std::to_string(app_->port());
  const std::string server = "--server=127.0.0.1:" + std::to_string(app_->app().grpcPort());
  const uint64_t before = reg().revision();
  Process watch(
      {epmdxctlBinary(), server, "--token=admintok", "watch", "--after=" + std::to_string(before)});
  Process list({epmdxctlBinary(), server, "--token=admintok", "list", "--watch", "-o", "wide"});
  // The list (its header) is printed before its watch starts: no change can slip between.
  ASSERT_TRUE(eventually([&] { return list.stdoutText().find("EVENT") != std::string::npos; }))
      << list.stderrText();
  startNode(name + "@127.0.0.1", "timer:sleep(120000).", "-name");
  const std::string vm = std::to_string(nodes_.back()->pid());

  // epmdxctl watch: "REV holder_changed NAME@HOST holder=PID/beam.smp(STATE) id=N".
  std::smatch m;
  std::string out;
  ASSERT_TRUE(eventually([&] {
    out = watch.stdoutText();
    return std::regex_search(
        out, m,
        std::regex("(\\d+) holder_changed " + name + "@127\\.0\\.0\\.1 holder=" + vm +
                   "/beam\\.smp\\(\\w+\\) id=\\d+\n"));
  })) << out
      << watch.stderrText();
  const uint64_t revision = std::stoull(m[1]);
  EXPECT_NE(out.find(" registered " + name + " "), std::string::npos) << out;
  // Exactly one: three later looks (the interval is 1 s) find the same holder.
  const uint64_t revision_then = reg().revision();
  const uint64_t looks = app_->app().holderMonitor()->batches() + 3;
  ASSERT_TRUE(eventually([&] { return app_->app().holderMonitor()->batches() >= looks; }));
  EXPECT_EQ(reg().revision(), revision_then);
  EXPECT_EQ(reg().stats().holder_changes, 1u);

  // epmdxctl list --watch -o wide: a HOLDER_CHANGED row with the node's full name (the
  // short table shows bare epmd names) and its holder.
  ASSERT_TRUE(eventually([&] {
    return std::regex_search(
        list.stdoutText(),
        std::regex("HOLDER_CHANGED +" + name + "@127\\.0\\.0\\.1 .* " + vm + "/beam\\.smp\\("));
  })) << list.stdoutText();

  // SSE: the same event, node.host 127.0.0.1 and the holder the VM.
  v1::NodeEvent event;
  ASSERT_EQ(readSse(app_->app().httpPort(), "/v1/watch?since=" + std::to_string(revision - 1), {},
                    [&](const SseEvent& e) {
                      return e.event != "change" ||
                             !google::protobuf::util::JsonStringToMessage(e.data, &event).ok() ||
                             event.revision() != revision;
                    }),
            200);
  EXPECT_EQ(event.type(), v1::NodeEvent::HOLDER_CHANGED);
  EXPECT_EQ(event.node().name(), name);
  EXPECT_EQ(event.node().host(), "127.0.0.1");
  EXPECT_EQ(event.node().holder().status(), v1::FOUND);
  ASSERT_EQ(event.node().holder().processes_size(), 1);
  EXPECT_EQ(std::to_string(event.node().holder().processes(0).pid()), vm);
  watch.signal(SIGTERM);
  list.signal(SIGTERM);
}

}  // namespace
}  // namespace epmdx::testing
