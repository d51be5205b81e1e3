// Real Erlang/OTP 25 against epmdx: nodes register, find and ping each other through it;
// OTP's own `epmd` client works against it; `erl -epmd` starts it as a daemon.

#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

#include "tests/support/erlang.h"
#include "tests/support/net.h"
#include "tests/support/process.h"

namespace epmdx::testing {
namespace {

using namespace std::chrono_literals;

class ErlangTest : public ::testing::Test {
 protected:
  void startEpmdx(std::vector<std::string> extra = {}) {
    port_ = freePort();
    std::vector<std::string> argv{epmdxBinary(), "-port", std::to_string(port_),
                                  "--grpc-listen=off", "--http-listen=off"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    epmdx_ = std::make_unique<Process>(argv);
    ASSERT_TRUE(waitForPort(port_, 5s));
  }
  /// A node that stays up (until the test ends) with a unique name.
  std::unique_ptr<Process> startNode(const std::string& name) {
    return std::make_unique<Process>(
        std::vector<std::string>{"erl", "-sname", name, "-setcookie", "epmdxtest", "-noshell",
                                 "-start_epmd", "false", "-eval", "timer:sleep(60000), halt()."},
        erlEnv(port_));
  }
  std::string uniq(const std::string& base) { return base + std::to_string(port_); }

  uint16_t port_ = 0;
  std::unique_ptr<Process> epmdx_;
};

TEST_F(ErlangTest, NodesRegisterFindAndPingEachOther) {
  startEpmdx();
  const std::string a = uniq("alpha");
  auto node_a = startNode(a);
  ASSERT_TRUE(waitForNames(port_, "name " + a + " at port", true));
  // Node b looks a up through epmdx (PORT_PLEASE2) and connects: pong.
  auto [code, out] = runCommand(
      {"erl", "-sname", uniq("beta"), "-setcookie", "epmdxtest", "-noshell", "-start_epmd", "false",
       "-eval",
       "[_, Host] = string:split(atom_to_list(node()), \"@\"), "
       "Peer = list_to_atom(\"" +
           a +
           "@\" ++ Host), "
           // A loaded machine can make one attempt fail: a few tries, as a real client
           // would; every try looks the peer up through epmdx (PORT_PLEASE2).
           "Ping = fun F(0) -> pang; F(N) -> case net_adm:ping(Peer) of pong -> pong; "
           "pang -> timer:sleep(300), F(N - 1) end end, "
           "io:format(\"~p ~p~n\", [Ping(10), lists:sort(element(2, net_adm:names()))]), "
           "halt()."},
      erlEnv(port_), 30s);
  EXPECT_EQ(code, 0);
  EXPECT_NE(out.find("pong"), std::string::npos) << out;
  EXPECT_NE(out.find("\"" + a + "\""), std::string::npos) << out;  // net_adm:names via epmdx.
  node_a->signal(SIGKILL);
  node_a->wait(5s);
  EXPECT_TRUE(waitForNames(port_, "name " + a + " ", false));  // Gone with its connection.
}

TEST_F(ErlangTest, DuplicateNameIsRefusedToTheSecondNode) {
  startEpmdx();
  const std::string a = uniq("dup");
  auto node_a = startNode(a);
  ASSERT_TRUE(waitForNames(port_, "name " + a + " at port", true));
  auto [code, out] =
      runCommand({"erl", "-sname", a, "-noshell", "-start_epmd", "false", "-eval", "halt()."},
                 erlEnv(port_), 30s);
  EXPECT_NE(code, 0);  // "the name ... seems to be in use by another Erlang node".
}

TEST_F(ErlangTest, OtpEpmdClientNamesStopAndKill) {
  startEpmdx({"-relaxed_command_check"});
  const std::string a = uniq("gamma");
  auto node_a = startNode(a);
  ASSERT_TRUE(waitForNames(port_, "name " + a + " at port", true));
  auto [ncode, names] = runCommand({otpEpmdBinary(), "-port", std::to_string(port_), "-names"});
  EXPECT_EQ(ncode, 0);
  EXPECT_EQ(names.rfind("epmd: up and running on port " + std::to_string(port_) +
                            " with data:\nname " + a + " at port ",
                        0),
            0u)
      << names;
  auto [scode, stopped] = runCommand({otpEpmdBinary(), "-port", std::to_string(port_), "-stop", a});
  EXPECT_EQ(scode, 0);
  EXPECT_EQ(stopped, "STOPPED\n");
  EXPECT_TRUE(waitForNames(port_, "name " + a + " ", false));
  auto [kcode, killed] = runCommand({otpEpmdBinary(), "-port", std::to_string(port_), "-kill"});
  EXPECT_EQ(kcode, 0);
  EXPECT_EQ(killed, "Killed\n");
  EXPECT_EQ(epmdx_->wait(5s), std::optional<int>(0));
}

TEST_F(ErlangTest, OtpKillIsRefusedWhileNodesLive) {
  startEpmdx();
  const std::string a = uniq("delta");
  auto node_a = startNode(a);
  ASSERT_TRUE(waitForNames(port_, "name " + a + " at port", true));
  auto [kcode, out] = runCommand({otpEpmdBinary(), "-port", std::to_string(port_), "-kill"});
  EXPECT_EQ(kcode, 1);
  EXPECT_EQ(out, "Killing not allowed - living nodes in database.\n");
  EXPECT_TRUE(epmdx_->running());
}

TEST_F(ErlangTest, EpmdxClientMatchesOtpClientAgainstOtpEpmd) {
  port_ = freePort();
  Process otp({otpEpmdBinary(), "-port", std::to_string(port_), "-relaxed_command_check"});
  ASSERT_TRUE(waitForPort(port_, 5s));
  const std::string a = uniq("eps");
  auto node_a = startNode(a);
  ASSERT_TRUE(waitForNames(port_, "name " + a + " at port", true));
  for (std::vector<std::string> cmd :
       {std::vector<std::string>{"-names"}, std::vector<std::string>{"-stop", "nosuch"}}) {
    std::vector<std::string> theirs{otpEpmdBinary(), "-port", std::to_string(port_)};
    std::vector<std::string> ours{epmdxBinary(), "-port", std::to_string(port_)};
    theirs.insert(theirs.end(), cmd.begin(), cmd.end());
    ours.insert(ours.end(), cmd.begin(), cmd.end());
    EXPECT_EQ(runCommand(ours), runCommand(theirs)) << cmd[0];
  }
  const uint16_t nobody = freePort();
  EXPECT_EQ(runCommand({epmdxBinary(), "-port", std::to_string(nobody), "-names"}),
            runCommand({otpEpmdBinary(), "-port", std::to_string(nobody), "-names"}));
}

TEST_F(ErlangTest, ErlStartsEpmdxAsItsEpmd) {
  port_ = freePort();
  const std::string prog = epmdxBinary() + " -port " + std::to_string(port_) +
                           " --grpc-listen=off --http-listen=off -daemon";
  const std::string c = uniq("zeta");
  auto node = std::make_unique<Process>(
      std::vector<std::string>{"erl", "-sname", c, "-noshell", "-epmd", prog, "-eval",
                               "timer:sleep(60000), halt()."},
      erlEnv(port_));
  ASSERT_TRUE(waitForNames(port_, "name " + c + " at port", true, 20s));
  auto [dcode, dump] = runCommand({epmdxBinary(), "-port", std::to_string(port_), "-dump"});
  EXPECT_EQ(dcode, 0);
  EXPECT_NE(dump.find("active name     <" + c + "> at port "), std::string::npos) << dump;
  node->signal(SIGKILL);
  node->wait(5s);
  ASSERT_TRUE(waitForNames(port_, "name " + c + " ", false));
  // A second daemon on the taken port exits 0 quietly, as OTP's does.
  auto [code2, out2] = runCommand(
      {epmdxBinary(), "-port", std::to_string(port_), "--grpc-listen=off", "--http-listen=off"});
  EXPECT_EQ(code2, 0);
  auto [kcode, killed] = runCommand({otpEpmdBinary(), "-port", std::to_string(port_), "-kill"});
  EXPECT_EQ(killed, "Killed\n");
  EXPECT_FALSE(waitForPort(port_, 300ms));
}

}  // namespace
}  // namespace epmdx::testing
