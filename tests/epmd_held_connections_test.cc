// Registered connections, held open by their nodes, in process over real loopback sockets:
// each ends only its own registration, and they close when the daemon stops.

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/net.h"
#include "tests/support/running_app.h"

namespace epmdx::testing {
namespace {

using namespace std::chrono_literals;

int registerNode(uint16_t epmd_port, const std::string& name, uint16_t port) {
  const int fd = connectTo("127.0.0.1", epmd_port);
  EXPECT_GE(fd, 0);
  sendAll(fd, frame(alive2Body(name, port, 6, 5, "")));
  const std::string reply = readN(fd, 6, 2000ms);
  EXPECT_EQ(reply.size(), 6u);
  EXPECT_EQ(reply[1], 0) << "registration of " << name << " failed";
  return fd;
}

template <class Pred>
bool waitFor(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    std::this_thread::yield();
  }
  return true;
}

// Closing half of many held connections ends exactly those registrations: readiness on one
// held connection is never taken for another's.
TEST(HeldConnectionsTest, EachClosedConnectionEndsItsOwnRegistrationOnly) {
  RunningApp app(RunningApp::testOptions());
  constexpr int kNodes = 64;
  std::vector<int> fds;
  for (int i = 0; i < kNodes; ++i) {
    fds.push_back(registerNode(app.port(), "h" + std::to_string(i), 30000 + i));
  }
  ASSERT_EQ(app.app().registry().size(), static_cast<size_t>(kNodes));
  for (int i = 0; i < kNodes; i += 2) {
    close(fds[i]);
  }
  ASSERT_TRUE(waitFor([&] { return app.app().registry().size() == kNodes / 2; }));
  for (int i = 0; i < kNodes; ++i) {
    const bool present = app.app().registry().find("h" + std::to_string(i)) != nullptr;
    EXPECT_EQ(present, i % 2 == 1) << "h" << i;
  }
  // A held connection that sends data ends its registration too (OTP: any data ends it).
  sendAll(fds[1], "x");
  ASSERT_TRUE(waitFor([&] { return app.app().registry().find("h1") == nullptr; }));
  EXPECT_EQ(app.app().registry().size(), static_cast<size_t>(kNodes / 2 - 1));
  for (int i = 1; i < kNodes; i += 2) {
    close(fds[i]);
  }
}

// A daemon that stops closes the connections its nodes hold: each node sees EOF.
TEST(HeldConnectionsTest, StoppingTheDaemonClosesHeldConnections) {
  auto app = std::make_unique<RunningApp>(RunningApp::testOptions());
  const int a = registerNode(app->port(), "ha", 31000);
  const int b = registerNode(app->port(), "hb", 31001);
  app.reset();
  for (int fd : {a, b}) {
    const Outcome o = readUntilClose(fd, 5000ms);
    EXPECT_TRUE(o.closed);
    EXPECT_EQ(o.bytes, "");
    close(fd);
  }
}

}  // namespace
}  // namespace epmdx::testing
