// epmdxctl against a real epmdx process: output, exit codes, and a watch that resumes
// across broken connections without a gap or a repeat.

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <thread>

#include "tests/support/net.h"
#include "tests/support/process.h"
#include "tests/support/tcp_proxy.h"

namespace epmdx::testing {
namespace {

using namespace std::chrono_literals;

std::string ctlBinary() {
  return epmdxctlBinary();
}

class CtlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tokens_ = "/tmp/epmdx-ctl-test-" + std::to_string(getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::ofstream(tokens_) << "admintok read evict name=ops\nreadtok read\n";
    port_ = freePort();
    grpc_port_ = freePort();
    daemon_ = std::make_unique<Process>(
        std::vector<std::string>{epmdxBinary(), "-port", std::to_string(port_),
                                 "--grpc-listen=127.0.0.1:" + std::to_string(grpc_port_),
                                 "--http-listen=off", "--tokens-file=" + tokens_});
    ASSERT_TRUE(waitForPort(port_, 5s));
    ASSERT_TRUE(waitForPort(grpc_port_, 5s));
  }
  void TearDown() override {
    daemon_.reset();
    unlink(tokens_.c_str());
  }
  std::pair<int, std::string> ctl(std::vector<std::string> args,
                                  const std::string& token = "admintok") {
    std::vector<std::string> argv{ctlBinary(), "--server=127.0.0.1:" + std::to_string(grpc_port_),
                                  "--token=" + token};
    argv.insert(argv.end(), args.begin(), args.end());
    return runCommand(argv);
  }
  int registerNode(const std::string& name, uint16_t port) {
    const int fd = connectTo("127.0.0.1", port_);
    sendAll(fd, frame(alive2Body(name, port)));
    EXPECT_EQ(readN(fd, 6, 2000ms).size(), 6u);
    return fd;
  }

  std::string tokens_;
  uint16_t port_ = 0;
  uint16_t grpc_port_ = 0;
  std::unique_ptr<Process> daemon_;
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

TEST_F(CtlTest, WatchResumesAcrossBrokenConnectionsWithoutGapOrRepeat) {
  TcpProxy proxy(grpc_port_);
  const int a = registerNode("a", 1);
  Process watch({ctlBinary(), "--server=127.0.0.1:" + std::to_string(proxy.port()),
                 "--token=readtok", "watch", "--initial"});
  auto waitFor = [&watch](const std::string& needle) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (watch.stdoutText().find(needle) != std::string::npos) {
        return true;
      }
      std::this_thread::sleep_for(20ms);  // Polling the output with a deadline.
    }
    return false;
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
  Process watch({ctlBinary(), "--server=127.0.0.1:" + std::to_string(grpc_port_), "--token=readtok",
                 "watch", "--after=" + future});
  EXPECT_EQ(watch.wait(10s), std::optional<int>(1));
  EXPECT_NE(watch.stderrText().find("is in the future"), std::string::npos) << watch.stderrText();
}

}  // namespace
}  // namespace epmdx::testing
