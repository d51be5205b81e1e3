// The epmd listener over real TCP sockets on loopback, in process.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

#include "server/epmd/listener.h"
#include "tests/support/net.h"
#include "tests/support/running_app.h"

namespace epmdx::testing {
namespace {

using namespace std::chrono_literals;

class ListenerTest : public ::testing::Test {
 protected:
  void start(bool relaxed = false, int delay_write = 0) {
    auto o = RunningApp::testOptions();
    o.relaxed = relaxed;
    o.delay_write = delay_write;
    app_ = std::make_unique<RunningApp>(o);
  }
  int connect() { return connectTo("127.0.0.1", app_->port()); }

  /// Sends a request on a new connection and returns what the server did.
  Outcome request(const std::string& body, std::chrono::milliseconds timeout = 2000ms) {
    const int fd = connect();
    EXPECT_GE(fd, 0);
    sendAll(fd, frame(body));
    Outcome o = readUntilClose(fd, timeout);
    close(fd);
    return o;
  }

  /// Registers and returns the open connection (the registration).
  int registerNode(const std::string& name, uint16_t port, uint16_t high = 6,
                   const std::string& extra = "") {
    const int fd = connect();
    sendAll(fd, frame(alive2Body(name, port, high, 5, extra)));
    const std::string reply = readN(fd, high >= 6 ? 6 : 4, 2000ms);
    EXPECT_EQ(reply.size(), high >= 6 ? 6u : 4u);
    EXPECT_EQ(reply[1], 0) << "registration of " << name << " failed";
    return fd;
  }

  std::string names() {
    auto o = request("n");
    EXPECT_TRUE(o.closed);
    return o.bytes.size() >= 4 ? o.bytes.substr(4) : "";
  }

  std::unique_ptr<RunningApp> app_;
};

TEST_F(ListenerTest, RegisterLookupNamesAndUnregisterOnClose) {
  start();
  const int reg = registerNode("foo", 1042, 5, "xy");
  auto found = request("zfoo");
  EXPECT_TRUE(found.closed);
  EXPECT_EQ(found.bytes,
            bytes({119, 0, 4, 18, 77, 0, 0, 5, 0, 5, 0, 3}) + "foo" + bytes({0, 2}) + "xy");
  auto names_reply = request("n");
  EXPECT_EQ(names_reply.bytes.substr(0, 4), bytes({0, 0, static_cast<int>(app_->port() >> 8),
                                                   static_cast<int>(app_->port() & 0xFF)}));
  EXPECT_EQ(names_reply.bytes.substr(4), "name foo at port 1042\n");
  close(reg);
  // The registration ends with its connection; wait for the registry, not for time.
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  while (app_->app().registry().size() != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_EQ(request("zfoo").bytes, bytes({119, 1}));
  EXPECT_EQ(names(), "");
}

TEST_F(ListenerTest, DuplicateNameGetsErrorReplyAndTheConnectionStaysOpen) {
  start();
  const int first = registerNode("foobar", 1);
  const int second = connect();
  sendAll(second, frame(alive2Body("foobar", 2, 5, 5)));
  EXPECT_EQ(readN(second, 4, 2000ms), bytes({121, 1, 0, 99}));
  // Kept open like OTP's: nothing more arrives, no close within the packet timeout.
  auto o = readUntilClose(second, 2500ms);
  EXPECT_FALSE(o.closed);
  close(second);
  EXPECT_EQ(names(), "name foobar at port 1\n");
  close(first);
}

TEST_F(ListenerTest, NamesListsNewestFirst) {
  start();
  const int a = registerNode("a", 1);
  const int b = registerNode("b", 2);
  EXPECT_EQ(names(), "name b at port 2\nname a at port 1\n");
  close(a);
  close(b);
}

TEST_F(ListenerTest, AnyDataOnARegisteredConnectionUnregisters) {
  start();
  const int reg = registerNode("chatty", 5);
  sendAll(reg, "x");
  auto o = readUntilClose(reg, 2000ms);
  EXPECT_TRUE(o.closed);
  EXPECT_EQ(names(), "");
  close(reg);
}

TEST_F(ListenerTest, ExtraDataOnARegisteredConnectionClosesWithFinAsOtp) {
  // OTP's do_read reads up to its 3060-byte buffer once, unregisters and closes: the
  // client sees an orderly FIN for anything up to that size, a reset only beyond it.
  start();
  for (const size_t extra : {size_t{1}, size_t{17}, size_t{100}, size_t{3060}}) {
    const std::string name = "extra" + std::to_string(extra);
    const int reg = registerNode(name, 5);
    ASSERT_TRUE(sendAll(reg, std::string(extra, 'x')));
    const auto o = readUntilClose(reg, 2000ms);
    EXPECT_TRUE(o.closed) << extra << " bytes";
    EXPECT_FALSE(o.reset) << extra << " bytes: closed with RST, OTP sends FIN";
    EXPECT_TRUE(o.bytes.empty());
    close(reg);
  }
  // Past OTP's buffer the unread rest makes the close a reset, in OTP as here.
  const int reg = registerNode("extra4000", 5);
  ASSERT_TRUE(sendAll(reg, std::string(4000, 'x')));
  const auto o = readUntilClose(reg, 2000ms);
  EXPECT_TRUE(o.closed);
  EXPECT_TRUE(o.reset);
  close(reg);
  EXPECT_EQ(names(), "");
}

TEST_F(ListenerTest, SlowPacketIsReassembledAcrossOneSecondGaps) {
  start();  // packet_timeout 1, as epmd_SUITE's slow_get_port_nr.
  const int reg = registerNode("foo", 1042);
  const int fd = connect();
  sendAll(fd, bytes({0, 4, 'z'}));
  for (char c : std::string("foo")) {
    std::this_thread::sleep_for(1s);  // The stimulus: a slow client, not synchronisation.
    ASSERT_TRUE(sendAll(fd, std::string(1, c)));
  }
  auto o = readUntilClose(fd, 2000ms);
  EXPECT_TRUE(o.closed);
  ASSERT_GE(o.bytes.size(), 4u);
  EXPECT_EQ(o.bytes.substr(0, 4), bytes({119, 0, 4, 18}));
  close(fd);
  close(reg);
}

TEST_F(ListenerTest, IdleAndPartialConnectionsTimeOut) {
  start();
  for (const std::string& partial :
       {std::string(), bytes({0}), bytes({0, 3}), bytes({0, 100}) + "only a few bytes"}) {
    const int fd = connect();
    sendAll(fd, partial);
    const auto t0 = std::chrono::steady_clock::now();
    auto o = readUntilClose(fd, 5000ms);
    const auto waited = std::chrono::steady_clock::now() - t0;
    EXPECT_TRUE(o.closed);
    EXPECT_TRUE(o.bytes.empty());
    EXPECT_GE(waited, 1s);  // Never before the packet timeout.
    close(fd);
  }
}

TEST_F(ListenerTest, MalformedPacketsCloseWithoutReplyAndLeaveOthersAlone) {
  start();
  const int reg = registerNode("keeper", 9);
  EXPECT_TRUE(request("").closed);  // Length 0 (frame of an empty body).
  const int big = connect();
  sendAll(big, bytes({0xF6, 0x18}) + std::string(3000, 'z'));
  auto o = readUntilClose(big, 2000ms);
  EXPECT_TRUE(o.closed);
  EXPECT_TRUE(o.bytes.empty());
  close(big);
  for (const std::string& body :
       {std::string("a"), std::string("z"), alive2Body(std::string("a\0b", 3), 1),
        bytes({120, 0, 1, 77, 0, 0, 5, 0, 5}), std::string("s") + "keeper"}) {
    auto r = request(body);
    EXPECT_TRUE(r.closed);
    EXPECT_TRUE(r.bytes.empty());
  }
  const int over = connect();
  sendAll(over, frame("n") + "extra");
  auto ov = readUntilClose(over, 2000ms);
  EXPECT_TRUE(ov.closed);
  EXPECT_TRUE(ov.bytes.empty());
  close(over);
  EXPECT_EQ(names(), "name keeper at port 9\n");
  close(reg);
}

TEST_F(ListenerTest, StopWithoutRelaxedIsRefusedAndKillSaysNo) {
  start(false);
  const int reg = registerNode("foo", 1);
  EXPECT_EQ(request("sfoo").bytes, "");
  EXPECT_EQ(request("k").bytes, "NO");
  EXPECT_EQ(names(), "name foo at port 1\n");
  close(reg);
}

TEST_F(ListenerTest, RelaxedStopClosesTheRegistrationAndRepliesStopped) {
  start(true);
  const int reg = registerNode("foo", 1);
  EXPECT_EQ(request("sfoo").bytes, "STOPPED");
  EXPECT_TRUE(readUntilClose(reg, 2000ms).closed);  // The node's connection is closed.
  close(reg);
  EXPECT_EQ(request("sxxx42").bytes, "NOEXISTSTOPPED");
  EXPECT_EQ(names(), "");
}

TEST_F(ListenerTest, KillWithNoNodesExitsZero) {
  start();
  EXPECT_EQ(request("k").bytes, "OK");
  EXPECT_EQ(app_->waitExit(2000ms), 0);
}

TEST_F(ListenerTest, ResetBeforeTheAlive2ReplyLeavesNoZombie) {
  start(true, 1);  // -delay_write 1, as socket_reset_before_alive2_reply_is_written.
  const int fd = connect();
  sendAll(fd, frame(alive2Body("test", 1, 5, 5)));
  // Wait for the registration to land, then reset before the delayed reply is written.
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  while (app_->app().registry().size() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  ASSERT_EQ(app_->app().registry().size(), 1u);
  setLingerZero(fd);
  close(fd);
  const auto gone = std::chrono::steady_clock::now() + 3s;
  while (app_->app().registry().size() != 0 && std::chrono::steady_clock::now() < gone) {
    std::this_thread::yield();
  }
  EXPECT_EQ(app_->app().registry().size(), 0u);
}

TEST_F(ListenerTest, RegistersOverIpv6Loopback) {
  start();
  const int fd = connectTo("::1", app_->port());
  ASSERT_GE(fd, 0) << "epmdx must listen on ::1 (machines of this kind have IPv6 loopback)";
  sendAll(fd, frame(alive2Body("foobar6", 1, 5, 5)));
  EXPECT_EQ(readN(fd, 4, 2000ms).substr(0, 2), bytes({121, 0}));
  close(fd);
}

// Shedding near the descriptor limit, in process: the listener plans for a limit just
// above the descriptors in use (ListenerOptions::descriptor_limit), so the test reaches
// its high-water mark with a few dozen connections and never exhausts its own table.
TEST(ListenerShedTest, IdleConnectionsAreShedOldestFirstNearTheDescriptorLimit) {
  epmd::Metrics metrics;
  registry::Registry registry;
  asio::io_context io{1};
  const int base = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ::close(base);
  epmd::ListenerOptions lo;
  lo.port = 0;
  lo.addresses = "127.0.0.1";
  // A headroom of 32 (the smallest): the mark sits 40 descriptors above those in use now,
  // about 20 connections (each costs this process a client and a server descriptor).
  lo.descriptor_limit = static_cast<size_t>(base) + 72;
  auto listener = std::make_unique<epmd::Listener>(
      io, registry::ClusterView(registry, registry::kDefaultCluster), metrics, lo,
      [](const std::string&) {});
  ASSERT_EQ(listener->bind().status, epmd::Listener::BindStatus::Ok);
  listener->start();
  std::thread runner([&io] { io.run(); });

  // Idle connections, a few at a time, until the listener sheds (only connections idle
  // for a second are shed before the table is really full).
  std::vector<int> idle;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (metrics.shed_silent.load() == 0 && std::chrono::steady_clock::now() < deadline) {
    if (idle.size() < 60) {
      idle.push_back(connectTo("127.0.0.1", listener->port()));
      ASSERT_GE(idle.back(), 0);
    }
    std::this_thread::sleep_for(50ms);  // Polling a condition, with a deadline.
  }
  ASSERT_GT(metrics.shed_silent.load(), 0u);
  EXPECT_EQ(metrics.shed_partial.load(), 0u);
  EXPECT_EQ(metrics.shed_at_accept.load(), 0u);
  // The oldest went first.
  EXPECT_TRUE(readUntilClose(idle.front(), 2000ms).closed);
  EXPECT_FALSE(readUntilClose(idle.back(), 100ms).closed);

  // Registrations and lookups are answered, and registrations are never shed.
  const int reg = connectTo("127.0.0.1", listener->port());
  sendAll(reg, frame(alive2Body("kept", 7)));
  EXPECT_EQ(readN(reg, 6, 2000ms).substr(0, 2), bytes({118, 0}));
  for (int i = 0; i < 40; ++i) {
    const int fd = connectTo("127.0.0.1", listener->port());
    sendAll(fd, frame("zkept"));
    EXPECT_EQ(readUntilClose(fd, 2000ms).bytes.substr(0, 2), bytes({119, 0})) << i;
    close(fd);
  }
  EXPECT_EQ(registry.size(), 1u);

  asio::post(io, [&listener, &io] {
    listener->stop();
    io.stop();
  });
  runner.join();
  listener.reset();
  close(reg);
  for (int fd : idle) {
    close(fd);
  }
}

}  // namespace
}  // namespace epmdx::testing
