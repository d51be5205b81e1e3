// What the daemon says, read from a real epmdx process's stderr:
// -d logs every request, the access-policy line names the request, an unknown option is
// called unknown, and a taken --grpc-listen address gets epmdx's own line only (no gRPC
// core dump before it).

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/support/net.h"
#include "tests/support/process.h"

namespace epmdx::testing {
namespace {

using namespace std::chrono_literals;

/// Sends one request on a fresh connection and reads until the daemon closes.
std::string ask(uint16_t port, const std::string& body) {
  const int fd = connectTo("127.0.0.1", port);
  EXPECT_GE(fd, 0);
  sendAll(fd, frame(body));
  const Outcome o = readUntilClose(fd, 2000ms);
  close(fd);
  return o.bytes;
}

bool has(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

TEST(DaemonMessages, DebugLogsEveryRequestWithItsNameAndPeer) {
  const uint16_t port = freePort();
  Process d({epmdxBinary(), "-d", "-port", std::to_string(port), "--grpc-listen=off",
             "--http-listen=off", "-relaxed_command_check"});
  ASSERT_TRUE(waitForPort(port, 10s)) << d.stderrText();

  const int reg = connectTo("127.0.0.1", port);  // ALIVE2: the connection stays open.
  sendAll(reg, frame(alive2Body("dbgnode", 5123)));
  ASSERT_EQ(readN(reg, 6, 2000ms).size(), 6u);
  ask(port, "n");
  ask(port, "d");
  ask(port, "zdbgnode");  // The listener's fast path: all bytes are there at accept.
  ask(port, "znobody");
  ask(port, "sdbgnode");

  const std::vector<std::string> expected{
      "debug request request=ALIVE2_REQ name=dbgnode port=5123 peer=127.0.0.1:",
      "debug request request=NAMES_REQ peer=127.0.0.1:",
      "debug request request=DUMP_REQ peer=127.0.0.1:",
      "debug request request=PORT_PLEASE2_REQ name=dbgnode result=found peer=127.0.0.1:",
      "debug request request=PORT_PLEASE2_REQ name=nobody result=not_found peer=127.0.0.1:",
      "debug request request=STOP_REQ name=dbgnode peer=127.0.0.1:"};
  ASSERT_TRUE(eventually(
      [&] {
        for (const auto& e : expected) {
          if (!has(d.stderrText(), e)) {
            return false;
          }
        }
        return true;
      },
      5s))
      << d.stderrText();
  close(reg);
}

// -delay_write skips the listener's fast path: the lookup is a session's, logged the same.
TEST(DaemonMessages, DebugLogsALookupServedByASession) {
  const uint16_t port = freePort();
  Process d({epmdxBinary(), "-d", "-port", std::to_string(port), "--grpc-listen=off",
             "--http-listen=off", "-delay_write", "1"});
  ASSERT_TRUE(waitForPort(port, 10s)) << d.stderrText();
  EXPECT_EQ(ask(port, "znobody"), bytes({119, 1}));
  EXPECT_TRUE(eventually(
      [&] {
        return has(d.stderrText(),
                   "debug request request=PORT_PLEASE2_REQ name=nobody result=not_found peer=");
      },
      5s))
      << d.stderrText();
}

TEST(DaemonMessages, WithoutDebugNoRequestLines) {
  const uint16_t port = freePort();
  Process d(
      {epmdxBinary(), "-port", std::to_string(port), "--grpc-listen=off", "--http-listen=off"});
  ASSERT_TRUE(waitForPort(port, 10s)) << d.stderrText();
  ask(port, "n");
  ask(port, "zsomeone");
  d.signal(SIGTERM);
  ASSERT_TRUE(d.wait(10s).has_value());
  EXPECT_FALSE(has(d.stderrText(), " debug ")) << d.stderrText();
}

TEST(DaemonMessages, TheAccessPolicyLineNamesTheRequest) {
  const uint16_t port = freePort();
  // Loopback is outside this rule: this test's own NAMES is refused.
  Process d({epmdxBinary(), "-port", std::to_string(port), "--grpc-listen=off", "--http-listen=off",
             "--names-from=10.0.0.0/8"});
  ASSERT_TRUE(waitForPort(port, 10s)) << d.stderrText();
  EXPECT_EQ(ask(port, "n"), "");
  ASSERT_TRUE(eventually([&] { return has(d.stderrText(), "refused by the access policy"); }, 5s))
      << d.stderrText();
  EXPECT_TRUE(has(d.stderrText(), "request=NAMES_REQ")) << d.stderrText();
  EXPECT_FALSE(has(d.stderrText(), "request=110")) << d.stderrText();
}

TEST(DaemonMessages, AnUnknownOptionIsCalledUnknown) {
  Process p({epmdxBinary(), "--bogus"});
  EXPECT_EQ(p.wait(10s), std::optional<int>(1));
  const std::string out = p.stderrText() + p.stdoutText();
  EXPECT_TRUE(has(out, "unknown option --bogus")) << out;
  EXPECT_FALSE(has(out, "needs a value")) << out;
}

// A taken --grpc-listen address gets epmdx's own line, without gRPC core's raw "E1202 ...
// chttp2_server.cc:1045] UNKNOWN:No address added ..." dump before it.
TEST(DaemonMessages, ATakenGrpcAddressGetsEpmdxsLineOnly) {
  const int taken = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(taken, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(::listen(taken, 1), 0);
  socklen_t len = sizeof sa;
  ::getsockname(taken, reinterpret_cast<sockaddr*>(&sa), &len);
  const std::string address = "127.0.0.1:" + std::to_string(ntohs(sa.sin_port));
  for (const bool debug : {false, true}) {
    std::vector<std::string> argv{epmdxBinary(), "-port", std::to_string(freePort()),
                                  "--grpc-listen=" + address, "--http-listen=off"};
    if (debug) {
      argv.push_back("-d");
    }
    Process p(argv);
    EXPECT_EQ(p.wait(15s), std::optional<int>(1));
    const std::string err = p.stderrText();
    EXPECT_TRUE(has(err, "cannot listen for gRPC on " + address)) << err;
    // gRPC core's own format ("E1202 23:01:02.345678  123 chttp2_server.cc:1045] ...")
    // never appears; its details are debug lines of epmdx's, with -d only.
    EXPECT_FALSE(has(err, "] UNKNOWN:")) << err;
    EXPECT_EQ(has(err, "chttp2_server.cc:"), debug) << err;
    if (debug) {
      EXPECT_TRUE(has(err, " debug grpc core ")) << err;
    }
  }
  close(taken);
}

}  // namespace
}  // namespace epmdx::testing
