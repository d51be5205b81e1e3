// The health monitor (api::HealthMonitor) on a real Registry and real sockets: it probes the
// nodes there are when it starts and those that register later, records each verdict in the
// registry (a live VM reads the probe's packet and closes; a port nobody listens on is
// unresponsive), evicts a node unresponsive for too long when asked to, and after falling
// behind the kept history lists again, so that it still follows every node.

#include "server/api/health_monitor.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "tests/support/test_nodes.h"
#include "tests/wire/wire.h"

namespace epmdx::api {
namespace {

using namespace std::chrono_literals;
using registry::HealthStatus;

/// A live VM as the probe sees it: on loopback, reads a connection's first bytes and closes.
class LiveNode {
 public:
  LiveNode() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(listen(fd_, 64), 0);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      for (int c; (c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC)) >= 0;) {
        char buf[2];
        (void)!recv(c, buf, sizeof buf, MSG_WAITALL);
        close(c);
      }
    });
  }
  ~LiveNode() {
    shutdown(fd_, SHUT_RDWR);  // Ends accept().
    thread_.join();
    close(fd_);
  }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
};

registry::RegistryOptions options(size_t history = 1024) {
  registry::RegistryOptions o;
  o.history_size = history;
  return o;
}

HealthOptions fast(std::chrono::milliseconds evict_after = 0ms) {
  return HealthOptions{.interval = 50ms, .timeout = 300ms, .evict_after = evict_after};
}

void add(registry::Registry& r, const std::string& name, uint16_t port) {
  registry::NodeInfo n = testNode(name, port);
  ASSERT_TRUE(r.add(n, registry::Origin{"127.0.0.1:7", -1, ""}).ok()) << name;
}

/// Waits until `name`'s health is `status` (true), or the deadline (false).
bool waitFor(const registry::Registry& r, const std::string& name, HealthStatus status) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    const auto reg = r.find(name);
    if (reg && reg->health().status == status) {
      return true;
    }
    std::this_thread::yield();
  }
  return false;
}

TEST(HealthMonitor, ProbesTheNodesThereAreAndThoseThatRegisterLater) {
  LiveNode live;
  const uint16_t nobody = wire::freePort();
  registry::Registry r(options());
  add(r, "before", live.port());
  HealthMonitor monitor(r, fast());
  add(r, "later-live", live.port());
  add(r, "later-dead", nobody);

  EXPECT_TRUE(waitFor(r, "before", HealthStatus::Alive)) << "listed at start";
  EXPECT_TRUE(waitFor(r, "later-live", HealthStatus::Alive)) << "followed from its event";
  ASSERT_TRUE(waitFor(r, "later-dead", HealthStatus::Unresponsive));
  EXPECT_NE(r.find("later-dead")->health().last_error, "");

  const auto events = r.recentEvents(100);
  size_t health_changes = 0;
  for (const auto& e : events.events) {
    health_changes += e.type == registry::EventType::HealthChanged;
  }
  EXPECT_GE(health_changes, 3u) << "each verdict that changed a status is an event";
}

TEST(HealthMonitor, FollowsANameRegisteredAgain) {
  LiveNode live;
  registry::Registry r(options());
  HealthMonitor monitor(r, fast());
  add(r, "a", wire::freePort());
  ASSERT_TRUE(waitFor(r, "a", HealthStatus::Unresponsive));
  ASSERT_TRUE(r.remove(*r.find("a"), registry::UnregisterReason::Stopped));
  add(r, "a", live.port());
  EXPECT_TRUE(waitFor(r, "a", HealthStatus::Alive)) << "the new registration is probed";
}

TEST(HealthMonitor, EvictsANodeUnresponsiveForTooLong) {
  registry::Registry r(options());
  HealthMonitor monitor(r, fast(1ms));
  add(r, "dead", wire::freePort());
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (r.find("dead") && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  ASSERT_EQ(r.find("dead"), nullptr);
  const auto events = r.recentEvents(1);
  ASSERT_EQ(events.events.size(), 1u);
  const auto& e = events.events[0];
  EXPECT_EQ(e.type, registry::EventType::Unregistered);
  EXPECT_EQ(e.reason, registry::UnregisterReason::AutoEvicted);
  EXPECT_EQ(e.actor(), "auto-evict");
  EXPECT_EQ(std::string(e.detail()).find("unresponsive for "), 0u) << e.detail();
}

TEST(HealthMonitor, StillFollowsEveryNodeAfterFallingBehind) {
  // A history of two changes and a burst of registrations: the monitor's cursor falls
  // behind (it lists again); every node is probed all the same.
  LiveNode live;
  registry::Registry r(options(2));
  HealthMonitor monitor(r, fast());
  constexpr int kNodes = 64;
  for (int i = 0; i < kNodes; ++i) {
    add(r, "n" + std::to_string(i), live.port());
  }
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_TRUE(waitFor(r, "n" + std::to_string(i), HealthStatus::Alive)) << i;
  }
}

TEST(HealthMonitor, TargetIsWhereTheNodeRegisteredFrom) {
  registry::Registration r;
  r.node.port = 4321;
  r.origin.peer_address = "[::1]:5555";
  auto t = HealthMonitor::targetOf(r);
  EXPECT_EQ(t.address, "::1");
  EXPECT_EQ(t.port, 4321u);
  EXPECT_FALSE(t.tls);
  r.origin.peer_address = "10.1.2.3:9";
  EXPECT_EQ(HealthMonitor::targetOf(r).address, "10.1.2.3");
}

}  // namespace
}  // namespace epmdx::api
