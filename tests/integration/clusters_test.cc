// Several clusters in one daemon, with real OTP 25 nodes: each --cluster port has a
// name table of its own; the same name lives in two clusters; nodes find and ping the peers
// of their own cluster only; OTP's `epmd -port P -names` shows one cluster; the APIs filter
// and address clusters; KILL_REQ closes one cluster and the daemon exits with the last.

#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <thread>

#include "tests/support/erlang.h"
#include "tests/support/net.h"
#include "tests/support/process.h"
#include "tests/support/raw_http.h"
#include "tests/support/sse_client.h"

namespace epmdx::testing {
namespace {

using namespace std::chrono_literals;

class ClustersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = "/tmp/epmdx-clusters-" + std::to_string(getpid());
    mkdir(dir_.c_str(), 0700);
    std::ofstream(dir_ + "/tokens") << "admintok read evict name=test\n";
    chmod((dir_ + "/tokens").c_str(), 0600);
    main_ = freePort();
    blue_ = freePort();
    green_ = freePort();
    http_ = freePort();
    epmdx_ = std::make_unique<Process>(std::vector<std::string>{
        epmdxBinary(), "-port", std::to_string(main_), "--cluster=blue=" + std::to_string(blue_),
        "--cluster=green=" + std::to_string(green_), "--grpc-listen=off",
        "--http-listen=127.0.0.1:" + std::to_string(http_), "--tokens-file=" + dir_ + "/tokens"});
    ASSERT_TRUE(waitForPort(main_, 20s) && waitForPort(blue_, 20s) && waitForPort(green_, 20s) &&
                waitForPort(http_, 20s))
        << epmdx_->stderrText();
    cli_ = std::make_unique<httplib::Client>("127.0.0.1", http_);
  }

  std::unique_ptr<Process> startNode(const std::string& name, uint16_t port) {
    return std::make_unique<Process>(
        std::vector<std::string>{"erl", "-sname", name, "-setcookie", "epmdxtest", "-noshell",
                                 "-start_epmd", "false", "-eval", "timer:sleep(90000), halt()."},
        erlEnv(port));
  }

  /// From a fresh node in the cluster of `port`: ping each peer (a few tries, each a lookup
  /// through epmdx) and print the results.
  std::string pingFrom(uint16_t port, const std::vector<std::string>& peers) {
    std::string list;
    for (const auto& p : peers) {
      list += (list.empty() ? "\"" : ", \"") + p + "\"";
    }
    auto [code, out] =
        runCommand({"erl", "-sname", "pinger" + std::to_string(port), "-setcookie", "epmdxtest",
                    "-noshell", "-start_epmd", "false", "-eval",
                    "[_, Host] = string:split(atom_to_list(node()), \"@\"), "
                    "Ping = fun(P) -> Peer = list_to_atom(P ++ \"@\" ++ Host), "
                    "  F = fun G(0) -> pang; G(N) -> case net_adm:ping(Peer) of pong -> pong; "
                    "    pang -> timer:sleep(300), G(N - 1) end end, F(5) end, "
                    "io:format(\"~p~n\", [[{P, Ping(P)} || P <- [" +
                        list + "]]]), halt()."},
                   erlEnv(port), 60s);
    EXPECT_EQ(code, 0) << out;
    return out;
  }

  std::string u(const std::string& base) { return base + std::to_string(main_); }

  std::string dir_;
  uint16_t main_ = 0, blue_ = 0, green_ = 0, http_ = 0;
  std::unique_ptr<Process> epmdx_;
  std::unique_ptr<httplib::Client> cli_;
};

TEST_F(ClustersTest, SameNameInTwoClustersAndNodesFindOnlyTheirOwnCluster) {
  const std::string a = u("a"), b = u("b");
  auto a_blue = startNode(a, blue_);
  auto a_green = startNode(a, green_);  // The same name, another cluster: both register.
  auto b_blue = startNode(b, blue_);
  ASSERT_TRUE(waitForNames(blue_, "name " + a + " at port", true));
  ASSERT_TRUE(waitForNames(blue_, "name " + b + " at port", true));
  ASSERT_TRUE(waitForNames(green_, "name " + a + " at port", true));

  // OTP's own client on one cluster's port lists that cluster only.
  auto [gcode, green_names] =
      runCommand({otpEpmdBinary(), "-port", std::to_string(green_), "-names"});
  EXPECT_EQ(green_names.find("name " + b + " "), std::string::npos) << green_names;
  auto [mcode, main_names] =
      runCommand({otpEpmdBinary(), "-port", std::to_string(main_), "-names"});
  EXPECT_EQ(main_names.find("name " + a + " "), std::string::npos) << main_names;

  // Blue's nodes reach each other; green cannot find blue's b (pang), only its own a.
  const std::string from_blue = pingFrom(blue_, {a, b});
  EXPECT_NE(from_blue.find("{\"" + a + "\",pong}"), std::string::npos) << from_blue;
  EXPECT_NE(from_blue.find("{\"" + b + "\",pong}"), std::string::npos) << from_blue;
  const std::string from_green = pingFrom(green_, {a, b});
  EXPECT_NE(from_green.find("{\"" + a + "\",pong}"), std::string::npos) << from_green;
  EXPECT_NE(from_green.find("{\"" + b + "\",pang}"), std::string::npos) << from_green;

  // The API sees both a's, each with its cluster; counts per cluster.
  auto clusters = cli_->Get("/v1/clusters");
  ASSERT_TRUE(clusters);
  EXPECT_NE(clusters->body.find("\"name\":\"blue\",\"port\":" + std::to_string(blue_)),
            std::string::npos)
      << clusters->body;
  auto green_list = cli_->Get("/v1/nodes?cluster=green");
  ASSERT_TRUE(green_list);
  EXPECT_NE(green_list->body.find("\"name\":\"" + a + "\""), std::string::npos);
  EXPECT_EQ(green_list->body.find("\"name\":\"" + b + "\""), std::string::npos);
  EXPECT_EQ(cli_->Get("/v1/nodes?cluster=purple")->status, 400);

  // Evicting a in blue leaves a in green untouched.
  auto green_a = cli_->Get("/v1/nodes/" + a + "?cluster=green");
  ASSERT_TRUE(green_a && green_a->status == 200);
  httplib::Headers auth{{"Authorization", "Bearer admintok"}};
  auto evicted = cli_->Delete("/v1/nodes/" + a + "?cluster=blue", auth);
  ASSERT_TRUE(evicted);
  EXPECT_EQ(evicted->status, 200) << evicted->body;
  EXPECT_NE(evicted->body.find("\"cluster\":\"blue\""), std::string::npos) << evicted->body;
  auto green_a_after = cli_->Get("/v1/nodes/" + a + "?cluster=green");
  ASSERT_TRUE(green_a_after);
  EXPECT_EQ(green_a_after->body, green_a->body);  // Same registration, same creation.

  // Metrics count per configured cluster, never per node.
  auto metrics = cli_->Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("epmdx_cluster_nodes{cluster=\"green\"} 1"), std::string::npos)
      << metrics->body;
}

TEST_F(ClustersTest, AFilteredWatchSeesOneCluster) {
  std::vector<std::string> seen;
  std::thread reader([&] {
    readSse(http_, "/v1/watch?cluster=green&initial=true", {}, [&](const SseEvent& e) {
      if (e.event == "change") {
        seen.push_back(e.data);
      }
      return e.data.find("\"name\":\"last\"") == std::string::npos;
    });
  });
  // The stream is open once its initial frame is out; then register in both clusters.
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto m = cli_->Get("/metrics");
    if (m && m->body.find("epmdx_watchers{api=\"sse\"} 1") != std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(20ms);  // Polling with a deadline.
  }
  std::vector<int> held;
  for (auto [port, name] : std::vector<std::pair<uint16_t, std::string>>{
           {blue_, "inblue"}, {green_, "ingreen"}, {main_, "indefault"}, {green_, "last"}}) {
    const int fd = connectTo("127.0.0.1", port);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(sendAll(fd, frame(alive2Body(name, 7000))));
    ASSERT_EQ(readN(fd, 2, 5s), bytes({118, 0}));
    held.push_back(fd);
  }
  reader.join();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_NE(seen[0].find("\"name\":\"ingreen\""), std::string::npos) << seen[0];
  EXPECT_NE(seen[0].find("\"cluster\":\"green\""), std::string::npos) << seen[0];
  for (int fd : held) {
    close(fd);
  }
}

TEST_F(ClustersTest, KillClosesOneClusterAndTheDaemonExitsWithTheLast) {
  auto [code, out] = runCommand({otpEpmdBinary(), "-port", std::to_string(blue_), "-kill"});
  EXPECT_EQ(code, 0);
  EXPECT_NE(out.find("Killed"), std::string::npos) << out;
  // Blue is closed; the daemon and its other clusters go on.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (connectTo("127.0.0.1", blue_) >= 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);  // Polling with a deadline (descriptor leaks are fine).
  }
  EXPECT_LT(connectTo("127.0.0.1", blue_), 0);
  auto clusters = cli_->Get("/v1/clusters");
  ASSERT_TRUE(clusters);
  EXPECT_NE(clusters->body.find("\"name\":\"blue\""), std::string::npos);
  EXPECT_NE(clusters->body.find("\"serving\":false"), std::string::npos) << clusters->body;
  EXPECT_TRUE(epmdx_->running());
  // The other clusters really do go on: a node registers on green and OTP's `epmd -names`
  // on the default port answers.
  auto green_node = startNode("afterkill", green_);
  ASSERT_TRUE(eventually(
      [&] {
        return runCommand({otpEpmdBinary(), "-port", std::to_string(green_), "-names"})
                   .second.find("name afterkill at port") != std::string::npos;
      },
      20s));
  auto [ncode, names] = runCommand({otpEpmdBinary(), "-port", std::to_string(main_), "-names"});
  EXPECT_EQ(ncode, 0) << names;
  EXPECT_NE(names.find("epmd: up and running on port " + std::to_string(main_)), std::string::npos)
      << names;
  // One accurate line, not three "short of descriptors ... Bad file descriptor" lines,
  // an accept error and "exiting" while the daemon goes on.
  const std::string log = epmdx_->stderrText();
  EXPECT_NE(log.find("KILL_REQ: cluster closed, the daemon still serves the others cluster=blue "
                     "port=" +
                     std::to_string(blue_)),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("still_serving=default:" + std::to_string(main_) +
                     ",green:" + std::to_string(green_)),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("exiting"), std::string::npos) << log;
  EXPECT_EQ(log.find("short of descriptors"), std::string::npos) << log;
  EXPECT_EQ(log.find("Bad file descriptor"), std::string::npos) << log;
  EXPECT_EQ(metricValue(http_, "epmdx_epmd_accept_errors_total"), "0");
  green_node.reset();
  ASSERT_TRUE(eventually(
      [&] {
        return runCommand({otpEpmdBinary(), "-port", std::to_string(green_), "-names"})
                   .second.find("afterkill") == std::string::npos;
      },
      20s));
  runCommand({otpEpmdBinary(), "-port", std::to_string(green_), "-kill"});
  EXPECT_TRUE(epmdx_->running());
  runCommand({otpEpmdBinary(), "-port", std::to_string(main_), "-kill"});
  EXPECT_EQ(epmdx_->wait(10s), std::optional<int>(0));
  EXPECT_NE(epmdx_->stderrText().find("KILL_REQ: last epmd port closed, exiting cluster=default "
                                      "port=" +
                                      std::to_string(main_)),
            std::string::npos)
      << epmdx_->stderrText();
}

// A KILL_REQ whose bytes are there when the listener accepts it is answered inside the
// accept loop, which must then stop accepting on the closed acceptor (no EBADF, no accept
// error, no "short of descriptors ... Bad file descriptor" line). The daemon is
// stopped (SIGSTOP) while the KILL connects and sends, so its bytes are there at accept.
TEST(ClustersKill, AKillAnsweredInsideTheAcceptLoopEndsThatLoopQuietly) {
  const uint16_t main_port = freePort(), blue = freePort(), http = freePort();
  Process d({epmdxBinary(), "-port", std::to_string(main_port),
             "--cluster=blue=" + std::to_string(blue), "--grpc-listen=off",
             "--http-listen=127.0.0.1:" + std::to_string(http)});
  ASSERT_TRUE(waitForPort(main_port, 20s) && waitForPort(http, 20s)) << d.stderrText();
  ASSERT_TRUE(waitForPort(blue, 20s));
  d.signal(SIGSTOP);
  const int kill = connectTo("127.0.0.1", blue);  // The kernel completes the handshake.
  ASSERT_GE(kill, 0);
  ASSERT_TRUE(sendAll(kill, frame("k")));
  d.signal(SIGCONT);
  EXPECT_EQ(readUntilClose(kill, 5000ms).bytes, "OK");
  close(kill);
  // Every listener shares the epmd thread: once a NAMES on the default port is answered,
  // whatever the KILL's accept loop did next has happened.
  const int names = connectTo("127.0.0.1", main_port);
  ASSERT_TRUE(sendAll(names, frame("n")));
  EXPECT_EQ(readUntilClose(names, 5000ms).bytes.size(), 4u);
  close(names);
  const std::string log = d.stderrText();
  EXPECT_NE(log.find("KILL_REQ: cluster closed, the daemon still serves the others cluster=blue"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("Bad file descriptor"), std::string::npos) << log;
  EXPECT_EQ(log.find("accepting connections failed"), std::string::npos) << log;
  EXPECT_EQ(metricValue(http, "epmdx_epmd_accept_errors_total"), "0");
  EXPECT_TRUE(d.running());
}

}  // namespace
}  // namespace epmdx::testing
