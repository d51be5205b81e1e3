// The Prober against real loopback servers that behave like the cases it must tell apart: a
// live VM (reads the packet, closes), a hung VM (its kernel accepts, nobody reads), no
// listener at all.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "server/probe/prober.h"
#include "tests/support/net.h"

namespace epmdx::probe {
namespace {

using namespace std::chrono_literals;

enum class Behaviour {
  CloseAfterRead,  // A live VM: the handshake process reads our packet and exits.
  Answer,          // Sends bytes back.
  NeverAccept,     // A stopped VM: the kernel completes the handshake, the VM never accepts.
  AcceptAndHold,   // A VM whose code accepts but never reads (wedged after accept).
  TlsAlert,        // TLS distribution: answers anything with a TLS fatal alert, closes.
};

/// A loopback server on port 0 with one behaviour, on its own thread.
class FakeNode {
 public:
  explicit FakeNode(Behaviour behaviour) : behaviour_(behaviour) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(listen(fd_, 512), 0);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    if (behaviour_ != Behaviour::NeverAccept) {
      thread_ = std::thread([this] { serve(); });
    }
  }
  ~FakeNode() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);  // Wakes accept().
    if (thread_.joinable()) {
      thread_.join();
    }
    close(fd_);
    for (const int fd : held_) {
      close(fd);
    }
  }
  uint16_t port() const { return port_; }
  int packetsRead() const { return packets_read_; }
  /// TlsAlert: the first byte of each connection's first read (0x00 plain, 0x16 TLS).
  std::vector<uint8_t> firstBytes() {
    std::lock_guard lock(mu_);
    return first_bytes_;
  }

 private:
  void serve() {
    while (!stop_) {
      const int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        return;
      }
      if (behaviour_ == Behaviour::AcceptAndHold) {
        held_.push_back(c);
        continue;
      }
      if (behaviour_ == Behaviour::TlsAlert) {
        char hello[512];
        const ssize_t n = recv(c, hello, sizeof hello, 0);
        if (n > 0) {
          std::lock_guard lock(mu_);
          first_bytes_.push_back(static_cast<uint8_t>(hello[0]));
        }
        (void)!send(c, "\x15\x03\x03\x00\x02\x02\x0a", 7, MSG_NOSIGNAL);
        close(c);
        continue;
      }
      char buf[2];
      if (recv(c, buf, sizeof buf, MSG_WAITALL) == 2 && buf[0] == 0 && buf[1] == 0) {
        ++packets_read_;
      }
      if (behaviour_ == Behaviour::Answer) {
        (void)!send(c, "\0\3sok", 5, MSG_NOSIGNAL);
      }
      close(c);
    }
  }

  const Behaviour behaviour_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> packets_read_{0};
  std::vector<int> held_;  // Touched by the server thread only, then by the destructor.
  std::mutex mu_;
  std::vector<uint8_t> first_bytes_;  // Guarded by mu_.
  std::thread thread_;
};

/// Runs one probe and waits for its verdict.
ProbeResult probeOnce(Prober& prober, ProbeTarget target) {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<ProbeResult> result;
  prober.probeOnce(std::move(target), [&](const ProbeResult& r) {
    std::lock_guard lock(mu);
    result = r;
    cv.notify_all();
  });
  std::unique_lock lock(mu);
  EXPECT_TRUE(cv.wait_for(lock, 10s, [&] { return result.has_value(); }));
  return result.value_or(ProbeResult{});
}

ProberOptions fast() {
  ProberOptions o;
  o.interval = 50ms;
  o.timeout = 300ms;
  return o;
}

TEST(ProberTest, ANodeThatReadsAndClosesIsAlive) {
  FakeNode node(Behaviour::CloseAfterRead);
  Prober prober(fast(), nullptr);
  const ProbeResult r = probeOnce(prober, {"127.0.0.1", node.port()});
  EXPECT_EQ(r.liveness, Liveness::Alive) << r.detail;
  EXPECT_EQ(r.detail, "closed the connection");
  EXPECT_EQ(r.failure, Failure::None);
  EXPECT_LT(r.elapsed, 300ms);
  EXPECT_EQ(node.packetsRead(), 1);  // The empty distribution packet, and nothing else.
}

TEST(ProberTest, ANodeThatAnswersIsAlive) {
  FakeNode node(Behaviour::Answer);
  Prober prober(fast(), nullptr);
  const ProbeResult r = probeOnce(prober, {"::ffff:127.0.0.1", node.port()});
  EXPECT_EQ(r.liveness, Liveness::Alive) << r.detail;
  EXPECT_EQ(r.detail, "answered (5 bytes)");
}

TEST(ProberTest, AConnectionNobodyAcceptsIsUnresponsiveAfterTheTimeout) {
  // What a SIGSTOPped VM looks like: the kernel completes the TCP handshake.
  FakeNode node(Behaviour::NeverAccept);
  Prober prober(fast(), nullptr);
  const ProbeResult r = probeOnce(prober, {"127.0.0.1", node.port()});
  EXPECT_EQ(r.liveness, Liveness::Unresponsive);
  EXPECT_EQ(r.detail, "timeout: connected, no answer in 300 ms");
  EXPECT_EQ(r.failure, Failure::NoAnswer);
  EXPECT_GE(r.elapsed, 300ms);
  EXPECT_LT(r.elapsed, 1300ms);
}

TEST(ProberTest, AFullAcceptQueueIsNoConnection) {
  // A VM stopped long enough for connections to fill its accept queue: the kernel drops
  // further SYNs, so even the connect times out.
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(fd, 0), 0);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const uint16_t port = ntohs(a.sin_port);
  // Backlog 0 holds one connection; the next SYN is dropped (a blocking connect would
  // retry for minutes, so there is exactly one filler).
  std::vector<int> fillers{testing::connectTo("127.0.0.1", port)};
  ASSERT_GE(fillers[0], 0);
  Prober prober(fast(), nullptr);
  const ProbeResult r = probeOnce(prober, {"127.0.0.1", port});
  EXPECT_EQ(r.liveness, Liveness::Unresponsive);
  EXPECT_EQ(r.failure, Failure::NoConnection) << r.detail;
  EXPECT_EQ(r.detail, "timeout: no connection in 300 ms");
  for (const int f : fillers) {
    close(f);
  }
  close(fd);
}

TEST(ProberTest, AcceptedButNeverReadIsUnresponsive) {
  FakeNode node(Behaviour::AcceptAndHold);
  Prober prober(fast(), nullptr);
  const ProbeResult r = probeOnce(prober, {"127.0.0.1", node.port()});
  EXPECT_EQ(r.liveness, Liveness::Unresponsive);
  EXPECT_EQ(r.detail, "timeout: connected, no answer in 300 ms");
}

TEST(ProberTest, NoListenerIsRefusedAndABadAddressIsReported) {
  Prober prober(fast(), nullptr);
  const ProbeResult refused = probeOnce(prober, {"127.0.0.1", testing::freePort()});
  EXPECT_EQ(refused.liveness, Liveness::Unresponsive);
  EXPECT_EQ(refused.detail, "connection refused");
  EXPECT_EQ(refused.failure, Failure::Refused);
  EXPECT_EQ(toString(refused.failure), "refused");
  const ProbeResult bad = probeOnce(prober, {"node1.example", 4370});
  EXPECT_EQ(bad.liveness, Liveness::Unresponsive);
  EXPECT_EQ(bad.detail, "invalid address \"node1.example\"");
  EXPECT_EQ(bad.failure, Failure::Error);
}

TEST(ProberTest, ProbesManyNodesConcurrentlyWithinOneTimeout) {
  // 200 hung nodes, each costing a full timeout: together they take about one timeout, not
  // 200 of them.
  FakeNode hung(Behaviour::NeverAccept);
  FakeNode live(Behaviour::CloseAfterRead);
  Prober prober(fast(), nullptr);
  std::mutex mu;
  std::condition_variable cv;
  int alive = 0;
  int unresponsive = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 200; ++i) {
    prober.probeOnce({"127.0.0.1", i % 2 == 0 ? hung.port() : live.port()},
                     [&](const ProbeResult& r) {
                       std::lock_guard lock(mu);
                       (r.liveness == Liveness::Alive ? alive : unresponsive)++;
                       cv.notify_all();
                     });
  }
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return alive + unresponsive == 200; }));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(alive, 100);
  EXPECT_EQ(unresponsive, 100);
  EXPECT_LT(took, 2s);
}

TEST(ProberTest, MaxInFlightQueuesTheRest) {
  FakeNode hung(Behaviour::NeverAccept);
  ProberOptions o = fast();
  o.timeout = 200ms;
  o.max_in_flight = 2;
  Prober prober(o, nullptr);
  std::mutex mu;
  std::condition_variable cv;
  int done = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 6; ++i) {
    prober.probeOnce({"127.0.0.1", hung.port()}, [&](const ProbeResult&) {
      std::lock_guard lock(mu);
      ++done;
      cv.notify_all();
    });
  }
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return done == 6; }));
  // Two at a time, 200 ms each: three rounds.
  EXPECT_GE(std::chrono::steady_clock::now() - start, 600ms);
}

TEST(ProberTest, WatchReportsEveryVerdictChangesAndFailuresInARow) {
  auto live = std::make_unique<FakeNode>(Behaviour::CloseAfterRead);
  FakeNode hung(Behaviour::NeverAccept);
  std::mutex mu;
  std::condition_variable cv;
  std::map<uint64_t, std::vector<ProbeResult>> seen;
  Prober prober(fast(), [&](uint64_t id, const ProbeResult& r) {
    std::lock_guard lock(mu);
    seen[id].push_back(r);
    cv.notify_all();
  });
  prober.watch(1, {"127.0.0.1", live->port()});
  prober.watch(2, {"127.0.0.1", hung.port()});
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return seen[1].size() >= 3 && seen[2].size() >= 3; }));
  EXPECT_TRUE(seen[1][0].changed);
  EXPECT_FALSE(seen[1][1].changed);
  EXPECT_EQ(seen[1][2].liveness, Liveness::Alive);
  EXPECT_EQ(seen[1][2].consecutive_failures, 0u);
  EXPECT_TRUE(seen[2][0].changed);
  EXPECT_EQ(seen[2][0].liveness, Liveness::Unresponsive);
  EXPECT_EQ(seen[2][2].consecutive_failures, 3u);
  // Re-targeting id 2 at the live node: the next verdict is a change to alive.
  prober.watch(2, {"127.0.0.1", live->port()});
  const size_t before = seen[2].size();
  ASSERT_TRUE(cv.wait_for(lock, 10s, [&] {
    return seen[2].size() > before && seen[2].back().liveness == Liveness::Alive;
  }));
  EXPECT_TRUE(seen[2].back().changed);
  EXPECT_EQ(seen[2].back().consecutive_failures, 0u);
}

TEST(ProberTest, AWatchSwitchesToTlsWhenTheNodeAnswersWithATlsAlert) {
  FakeNode node(Behaviour::TlsAlert);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<ProbeResult> seen;
  Prober prober(fast(), [&](uint64_t, const ProbeResult& r) {
    std::lock_guard lock(mu);
    seen.push_back(r);
    cv.notify_all();
  });
  prober.watch(3, {"127.0.0.1", node.port()});
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return seen.size() >= 3; }));
  EXPECT_EQ(seen[0].liveness, Liveness::Alive);
  EXPECT_TRUE(seen[0].tls_detected);
  EXPECT_EQ(seen[0].detail, "answered with a TLS alert: the node uses TLS distribution");
  for (size_t i = 1; i < 3; ++i) {
    EXPECT_EQ(seen[i].liveness, Liveness::Alive) << seen[i].detail;
    EXPECT_FALSE(seen[i].tls_detected);
    // The handshake met the alert: the node's TLS code answered.
    EXPECT_EQ(seen[i].detail.rfind("answered the TLS handshake: ", 0), 0u) << seen[i].detail;
  }
  const auto first = node.firstBytes();
  ASSERT_GE(first.size(), 3u);
  EXPECT_EQ(first[0], 0x00);  // The empty distribution packet.
  EXPECT_EQ(first[1], 0x16);  // A TLS handshake record: the ClientHello.
  EXPECT_EQ(first[2], 0x16);
}

TEST(ProberTest, UnwatchStopsTheReports) {
  FakeNode live(Behaviour::CloseAfterRead);
  std::mutex mu;
  std::condition_variable cv;
  int reports = 0;
  Prober prober(fast(), [&](uint64_t, const ProbeResult&) {
    std::lock_guard lock(mu);
    ++reports;
    cv.notify_all();
  });
  prober.watch(7, {"127.0.0.1", live.port()});
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return reports >= 2; }));
  }
  prober.unwatch(7);
  // A one-shot probe queued after unwatch() runs after it on the prober's thread.
  probeOnce(prober, {"127.0.0.1", live.port()});
  int after_unwatch = 0;
  {
    std::lock_guard lock(mu);
    after_unwatch = reports;
  }
  // Ten intervals with no report: a negative can only be shown by waiting, bounded.
  std::unique_lock lock(mu);
  EXPECT_FALSE(cv.wait_for(lock, 500ms, [&] { return reports > after_unwatch; }));
}

TEST(ProberTest, DestroyingAProberWithProbesInFlightCallsNothingAfterwards) {
  FakeNode hung(Behaviour::NeverAccept);
  FakeNode live(Behaviour::CloseAfterRead);
  std::atomic<int> calls{0};
  {
    Prober prober(fast(), [&](uint64_t, const ProbeResult&) { ++calls; });
    for (uint64_t id = 0; id < 50; ++id) {
      prober.watch(id, {"127.0.0.1", hung.port()});
    }
    // Queued after the watches: once it answers, their probes are all in flight (each waits
    // out its 300 ms timeout, far longer than this one takes).
    EXPECT_EQ(probeOnce(prober, {"127.0.0.1", live.port()}).liveness, Liveness::Alive);
  }
  EXPECT_EQ(calls.load(), 0);
}

}  // namespace
}  // namespace epmdx::probe
