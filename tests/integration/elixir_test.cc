// Elixir through epmdx, with Debian's elixir and mix (no Hex, no
// network). Elixir nodes (--sname, --name) register and connect to each other; a `mix
// release` started with `bin/APP daemon` (ERL_EPMD_PORT, -start_epmd false) registers, its
// holder is its beam.smp (cookie redacted) and its name@host is what node() says there;
// `bin/APP pid`, `rpc` and `stop` work, and the short-lived rpc-XXXX-APP nodes they register
// are marked Node.release_helper in the events.

#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "epmdx/v1/registry.pb.h"
#include "tests/support/app_with_nodes.h"
#include "tests/support/process.h"
#include "tests/support/running_app.h"

namespace epmdx::testing {
namespace {

using namespace std::chrono_literals;
using registry::HolderFact;

class ElixirTest : public AppWithNodes {
 protected:
  void SetUp() override {
    auto o = RunningApp::testOptions();
    o.holder_interval_s = 1;
    startApp(o);
    suffix_ = "x" + std::to_string(app_->port());
  }

  void TearDown() override {
    if (release_vm_ > 0) {
      kill(release_vm_, SIGKILL);  // A failed test may leave the release running.
    }
    AppWithNodes::TearDown();
  }

  std::map<std::string, std::string> env() {
    return {{"ERL_EPMD_PORT", std::to_string(app_->port())},
            {"HOME", dir_},
            {"MIX_HOME", dir_ + "/mix"},
            {"HEX_HOME", dir_ + "/hex"},
            {"HEX_OFFLINE", "1"}};
  }

  // `elixir FLAG NAME --cookie C` with -start_epmd false, running `code`.
  Process& elixir(const std::string& flag, const std::string& name, const std::string& code) {
    nodes_.push_back(std::make_unique<Process>(
        std::vector<std::string>{"elixir", flag, name, "--cookie", "exc" + suffix_, "--erl",
                                 "-start_epmd false", "-e", code},
        env()));
    return *nodes_.back();
  }

  registry::RegistrationPtr foundHolder(const std::string& name) {
    registry::RegistrationPtr r;
    eventually([&] {
      r = reg().find(name);
      return r && r->holder && r->holder->status == HolderFact::Status::Found;
    });
    return r && r->holder && r->holder->status == HolderFact::Status::Found ? r : nullptr;
  }

  std::string suffix_;
  pid_t release_vm_ = 0;
};

// Two pairs of Elixir nodes, short and long names, find each other through epmdx alone.
TEST_F(ElixirTest, ElixirNodesRegisterAndConnect) {
  const std::string wait = ":timer.sleep(120000)";
  const std::string connect =
      "[_, host] = String.split(to_string(node()), \"@\"); "
      "IO.puts(\"connected #{Node.connect(String.to_atom(System.get_env(\"PEER\") <> \"@\" <> "
      "host))} #{inspect(Node.list())}\"); :timer.sleep(120000)";
  for (const std::string flag : {"--sname", "--name"}) {
    const std::string a = (flag == "--sname" ? "esa" : "ela") + suffix_;
    const std::string b = (flag == "--sname" ? "esb" : "elb") + suffix_;
    const std::string at = flag == "--name" ? "@127.0.0.1" : "";
    elixir(flag, a + at, wait);
    ASSERT_TRUE(eventually([&] { return reg().find(a) != nullptr; }))
        << nodes_.back()->stderrText();
    auto e = env();
    e["PEER"] = a;
    nodes_.push_back(std::make_unique<Process>(
        std::vector<std::string>{"elixir", flag, b + at, "--cookie", "exc" + suffix_, "--erl",
                                 "-start_epmd false", "-e", connect},
        e));
    Process& node_b = *nodes_.back();
    std::smatch m;
    std::string out;
    ASSERT_TRUE(eventually([&] {
      out = node_b.stdoutText();
      return std::regex_search(out, m, std::regex("connected (\\w+) \\[(.*)\\]\n"));
    })) << out
        << node_b.stderrText();
    EXPECT_EQ(m[1], "true") << flag << ": " << out << node_b.stderrText();
    EXPECT_NE(m[2].str().find(a + "@"), std::string::npos) << flag << ": " << out;
    ASSERT_NE(reg().find(b), nullptr);
    // The holder is each node's beam.smp; its --sname/--name gives the host.
    auto r = foundHolder(b);
    ASSERT_TRUE(r) << b;
    EXPECT_EQ(r->holder->processes[0].command, "beam.smp");
    if (flag == "--name") {
      EXPECT_EQ(r->holder->node_host, "127.0.0.1");
    }
  }
}

// A release with no dependencies, built here: `mix new` and `mix release` need no Hex.
TEST_F(ElixirTest, AMixReleaseRegistersAndItsHelperNodesAreMarked) {
  const std::string project = dir_ + "/demo";
  auto [code, out] = runCommand({"mix", "new", project}, env(), 60s);
  ASSERT_EQ(code, 0) << out;
  std::tie(code, out) = runCommand(
      {"sh", "-c", "cd " + project + " && MIX_ENV=prod mix release --quiet"}, env(), 120s);
  ASSERT_EQ(code, 0) << out;
  const std::string root = project + "/_build/prod/rel/demo";
  const std::string bin = root + "/bin/demo";
  const std::string cookie = readFile(root + "/releases/COOKIE");
  ASSERT_FALSE(cookie.empty());
  auto release_env = env();
  release_env["ERL_FLAGS"] = "-start_epmd false";  // The helpers' VMs read it too.
  const uint64_t before = reg().revision();

  std::tie(code, out) = runCommand({bin, "daemon"}, release_env);
  ASSERT_EQ(code, 0) << out;
  auto r = foundHolder("demo");
  ASSERT_TRUE(r) << readFile(root + "/tmp/log/erlang.log.1");
  ASSERT_EQ(r->holder->processes.size(), 1u);
  const auto& vm = r->holder->processes[0];
  release_vm_ = vm.pid;
  EXPECT_EQ(vm.command, "beam.smp");
  EXPECT_NE(vm.command_line.find("-sname demo"), std::string::npos) << vm.command_line;
  EXPECT_NE(vm.command_line.find("-setcookie [redacted]"), std::string::npos) << vm.command_line;
  EXPECT_EQ(vm.command_line.find(cookie), std::string::npos) << vm.command_line;

  // bin/demo pid: the holder; bin/demo rpc: node() there is the name@host the API gives.
  std::tie(code, out) = runCommand({bin, "pid"}, release_env);
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(out, std::to_string(vm.pid) + "\n");
  std::tie(code, out) = runCommand({bin, "rpc", "IO.puts(node())"}, release_env);
  ASSERT_EQ(code, 0) << out;
  const std::string grpc = "--server=127.0.0.1:" + std::to_string(app_->app().grpcPort());
  const auto [get_code, row] =
      runCommand({epmdxctlBinary(), grpc, "--token=admintok", "get", "demo", "--no-headers"});
  EXPECT_EQ(get_code, 0) << row;
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(row.rfind(out.substr(0, out.size() - 1) + " ", 0), 0u) << row << " vs " << out;

  // bin/demo stop: the release leaves.
  std::tie(code, out) = runCommand({bin, "stop"}, release_env);
  ASSERT_EQ(code, 0) << out;
  ASSERT_TRUE(eventually([&] { return reg().find("demo") == nullptr; }));
  EXPECT_TRUE(eventually([&] { return kill(release_vm_, 0) != 0; }));
  release_vm_ = 0;

  // The events: each command's helper node registered and left, marked; demo is not.
  httplib::Client http("127.0.0.1", app_->app().httpPort());
  v1::ListEventsResponse events;
  std::map<std::string, int> helper_events;  // REGISTERED + UNREGISTERED, by name.
  ASSERT_TRUE(eventually([&] {
    auto got = http.Get("/v1/events?limit=1000&after_revision=" + std::to_string(before));
    events.Clear();
    helper_events.clear();
    if (!got || got->status != 200 ||
        !google::protobuf::util::JsonStringToMessage(got->body, &events).ok()) {
      return false;
    }
    for (const auto& e : events.events()) {
      if (e.node().name().rfind("rpc-", 0) == 0 &&
          (e.type() == v1::NodeEvent::REGISTERED || e.type() == v1::NodeEvent::UNREGISTERED)) {
        ++helper_events[e.node().name()];
      }
    }
    return helper_events.size() == 3 && std::all_of(helper_events.begin(), helper_events.end(),
                                                    [](const auto& h) { return h.second == 2; });
  })) << events.DebugString();
  for (const auto& e : events.events()) {
    const auto& n = e.node();
    if (n.name() == "demo") {
      EXPECT_FALSE(n.has_release_helper()) << e.DebugString();
      continue;
    }
    ASSERT_TRUE(std::regex_match(n.name(), std::regex("rpc-[0-9a-f]{4}-demo"))) << n.name();
    // A holder look may catch a helper alive (HOLDER_CHANGED); it is marked there too.
    EXPECT_EQ(n.release_helper().command(), "rpc") << e.DebugString();
    EXPECT_EQ(n.release_helper().target(), "demo") << e.DebugString();
  }

  // epmdxctl events says what each helper row is; demo's own rows carry no mark.
  const auto [events_code, table] = runCommand(
      {epmdxctlBinary(), grpc, "--token=admintok", "events", "--limit=1000", "--no-headers"});
  ASSERT_EQ(events_code, 0) << table;
  int marked = 0;
  std::istringstream lines(table);
  for (std::string line; std::getline(lines, line);) {
    const bool helper = std::regex_search(line, std::regex(" rpc-[0-9a-f]{4}-demo"));
    const bool tagged = line.find("release_helper=rpc:demo") != std::string::npos;
    EXPECT_EQ(helper, tagged) << line;
    marked += (helper && tagged) ? 1 : 0;
  }
  EXPECT_GE(marked, 6) << table;
}

}  // namespace
}  // namespace epmdx::testing
