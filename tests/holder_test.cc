// HolderResolver and HolderService against real loopback connections of this process: the
// kernel's sock_diag and /proc must name this very process as the holder.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include "server/api/holder_monitor.h"
#include "server/holder/holder_resolver.h"
#include "server/holder/holder_service.h"
#include "server/registry/registry.h"

namespace epmdx::holder {
namespace {

using namespace std::chrono_literals;

/// The daemon's view of an accepted connection: its local address and its peer.
ConnectionKey daemonSide(int accepted_fd) {
  return {Endpoint::localOf(accepted_fd).value(), Endpoint::peerOf(accepted_fd).value()};
}

/// A listening socket on `address` (an IPv4 or IPv6 literal), port 0.
class Listener {
 public:
  explicit Listener(const std::string& address, bool v6only = true) {
    const bool v6 = address.find(':') != std::string::npos;
    fd_ = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (v6) {
      const int flag = v6only ? 1 : 0;
      setsockopt(fd_, IPPROTO_IPV6, IPV6_V6ONLY, &flag, sizeof flag);
      auto& a = reinterpret_cast<sockaddr_in6&>(ss);
      a.sin6_family = AF_INET6;
      inet_pton(AF_INET6, address.c_str(), &a.sin6_addr);
      len = sizeof a;
    } else {
      auto& a = reinterpret_cast<sockaddr_in&>(ss);
      a.sin_family = AF_INET;
      inet_pton(AF_INET, address.c_str(), &a.sin_addr);
      len = sizeof a;
    }
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&ss), len), 0);
    EXPECT_EQ(listen(fd_, 1024), 0);
    port_ = Endpoint::localOf(fd_).value().port;
  }
  ~Listener() {
    for (const int fd : fds_) {
      close(fd);
    }
    close(fd_);
  }

  /// Connects a client to `address`:port and accepts it; returns the daemon-side key.
  ConnectionKey connectFrom(const std::string& address) {
    const bool v6 = address.find(':') != std::string::npos;
    const int c = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (v6) {
      auto& a = reinterpret_cast<sockaddr_in6&>(ss);
      a.sin6_family = AF_INET6;
      a.sin6_port = htons(port_);
      inet_pton(AF_INET6, address.c_str(), &a.sin6_addr);
      len = sizeof a;
    } else {
      auto& a = reinterpret_cast<sockaddr_in&>(ss);
      a.sin_family = AF_INET;
      a.sin_port = htons(port_);
      inet_pton(AF_INET, address.c_str(), &a.sin_addr);
      len = sizeof a;
    }
    EXPECT_EQ(connect(c, reinterpret_cast<sockaddr*>(&ss), len), 0) << address;
    const int a = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    EXPECT_GE(a, 0);
    fds_.push_back(c);
    fds_.push_back(a);
    client_ = c;
    return daemonSide(a);
  }
  int lastClient() const { return client_; }
  /// Closes a descriptor before the destructor would.
  void closeEarly(int fd) {
    fds_.erase(std::find(fds_.begin(), fds_.end(), fd));
    close(fd);
  }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  int client_ = -1;
  std::vector<int> fds_;
};

/// A child process that inherits this process's descriptors (so it holds its sockets too),
/// closes `close_in_child` and waits to be killed. Returns its pid once it runs, -1 if the
/// fork or the pipe failed. Only async-signal-safe calls in the child.
pid_t forkHolder(std::initializer_list<int> close_in_child = {}) {
  int ready[2];
  if (pipe(ready) != 0) {
    return -1;
  }
  const pid_t child = fork();
  if (child == 0) {
    close(ready[0]);
    for (int fd : close_in_child) {
      close(fd);
    }
    const char byte = 1;
    (void)!write(ready[1], &byte, 1);
    pause();
    _exit(0);
  }
  close(ready[1]);
  char byte = 0;
  const bool runs = child > 0 && read(ready[0], &byte, 1) == 1;
  close(ready[0]);
  return runs ? child : -1;
}

std::string ownComm() {
  std::ifstream in("/proc/self/comm");
  std::string comm;
  std::getline(in, comm);
  return comm;
}

std::string ownCommandLine() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!text.empty() && text.back() == '\0') {
    text.pop_back();
  }
  std::replace(text.begin(), text.end(), '\0', ' ');
  return text;
}

TEST(EndpointTest, ParsesAndPrintsTheRegistryFormat) {
  const auto v4 = Endpoint::parse("127.0.0.1:4369");
  ASSERT_TRUE(v4);
  EXPECT_TRUE(v4->isIpv4());
  EXPECT_EQ(v4->port, 4369);
  EXPECT_EQ(v4->toString(), "127.0.0.1:4369");
  const auto v6 = Endpoint::parse("[::1]:50000");
  ASSERT_TRUE(v6);
  EXPECT_FALSE(v6->isIpv4());
  EXPECT_EQ(v6->toString(), "[::1]:50000");
  // An IPv4-mapped address is the IPv4 address: the same connection through either family.
  EXPECT_EQ(Endpoint::parse("[::ffff:127.0.0.1]:4369"), v4);
  EXPECT_FALSE(Endpoint::localOf(-1));
  EXPECT_FALSE(Endpoint::peerOf(-1));
  for (const char* bad : {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "[::1]4369",
                          "[::1:4369", "host:4369", "127.0.0.1:43x9"}) {
    EXPECT_FALSE(Endpoint::parse(bad)) << bad;
  }
}

TEST(HolderResolverTest, FindsThisProcessAsTheHolderOverIpv4AndIpv6) {
  for (const std::string address : {"127.0.0.1", "::1"}) {
    Listener listener(address);
    const ConnectionKey key = listener.connectFrom(address);
    // The daemon's side, read from the accepted socket: the listener's address and port.
    EXPECT_EQ(key.local.toString(),
              Endpoint::parse(address.find(':') != std::string::npos
                                  ? "[" + address + "]:" + std::to_string(listener.port())
                                  : address + ":" + std::to_string(listener.port()))
                  ->toString());
    EXPECT_EQ(key.remote, Endpoint::localOf(listener.lastClient()));
    const Holder h = HolderResolver().resolveOne(key);
    ASSERT_EQ(h.status, HolderStatus::Found) << address << ": " << h.reason;
    ASSERT_EQ(h.processes.size(), 1u);
    const ProcessInfo& p = h.processes[0];
    EXPECT_EQ(p.pid, getpid());
    EXPECT_EQ(p.uid, getuid());
    EXPECT_EQ(h.socket_uid, getuid());
    EXPECT_NE(h.socket_inode, 0u);
    EXPECT_EQ(p.command, ownComm());
    EXPECT_EQ(p.command_line, ownCommandLine());
    EXPECT_FALSE(p.user.empty());
    EXPECT_NE(p.start_time_ticks, 0u);
    ASSERT_FALSE(p.nspids.empty());
    EXPECT_EQ(p.nspids.front(), getpid());
    EXPECT_EQ(p.stateName(), p.state == 'R' ? "running" : "sleeping");
  }
}

TEST(HolderResolverTest, MatchesAnIpv4ClientOfADualStackListener) {
  // The daemon sees ::ffff:127.0.0.1, the client's socket is plain IPv4.
  Listener listener("::", /*v6only=*/false);
  const ConnectionKey key = listener.connectFrom("127.0.0.1");
  EXPECT_FALSE(key.local.toString().empty());
  const Holder h = HolderResolver().resolveOne(key);
  ASSERT_EQ(h.status, HolderStatus::Found) << h.reason;
  EXPECT_EQ(h.processes.at(0).pid, getpid());
}

TEST(HolderResolverTest, AClosedOrUnknownConnectionIsNotOnThisHost) {
  Listener listener("127.0.0.1");
  const ConnectionKey key = listener.connectFrom("127.0.0.1");
  ConnectionKey elsewhere = key;
  elsewhere.remote = *Endpoint::parse("192.0.2.7:40000");  // TEST-NET-1: nobody here.
  const Holder h = HolderResolver().resolveOne(elsewhere);
  EXPECT_EQ(h.status, HolderStatus::NotOnHost);
  EXPECT_NE(h.reason.find("192.0.2.7:40000 -> " + key.local.toString()), std::string::npos)
      << h.reason;
  EXPECT_EQ(h.socket_inode, 0u);
  EXPECT_TRUE(h.processes.empty());
}

TEST(HolderResolverTest, ResolvesABatchWithOneDumpAndOneScan) {
  Listener listener("127.0.0.1");
  std::vector<ConnectionKey> keys;
  for (int i = 0; i < 200; ++i) {
    keys.push_back(listener.connectFrom("127.0.0.1"));
  }
  ConnectionKey missing = keys.back();
  missing.remote.port = 1;  // No such connection.
  keys.push_back(missing);
  ResolveStats stats;
  const auto holders = HolderResolver().resolve(keys, &stats);
  ASSERT_EQ(holders.size(), keys.size());
  std::set<uint64_t> inodes;
  for (size_t i = 0; i < 200; ++i) {
    ASSERT_EQ(holders[i].status, HolderStatus::Found) << i << ": " << holders[i].reason;
    EXPECT_EQ(holders[i].processes.at(0).pid, getpid());
    inodes.insert(holders[i].socket_inode);
  }
  EXPECT_EQ(inodes.size(), 200u);  // Each its own client socket.
  EXPECT_EQ(holders.back().status, HolderStatus::NotOnHost);
  // The kernel filter on the daemon's port: the clients' sockets, not the accepted ones
  // (a few more if another connection on the host uses that port number as its peer's).
  EXPECT_GE(stats.sockets, 200u);
  EXPECT_LT(stats.sockets, 250u);
  EXPECT_GE(stats.descriptors, 400u);  // Both ends live in this process.
  EXPECT_GE(stats.processes, 1u);
}

TEST(HolderResolverTest, AForkedChildThatKeepsTheSocketIsASecondHolder) {
  Listener listener("127.0.0.1");
  const ConnectionKey key = listener.connectFrom("127.0.0.1");
  const pid_t child = forkHolder();
  ASSERT_GT(child, 0);
  const Holder h = HolderResolver().resolveOne(key);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  ASSERT_EQ(h.status, HolderStatus::Found) << h.reason;
  ASSERT_EQ(h.processes.size(), 2u);
  EXPECT_EQ(h.processes[0].pid, std::min(getpid(), child));
  EXPECT_EQ(h.processes[1].pid, std::max(getpid(), child));
}

TEST(HolderResolverTest, RemembersHoldersAndNoticesWhenTheSocketChangesHands) {
  Listener listener("127.0.0.1");
  const ConnectionKey key = listener.connectFrom("127.0.0.1");
  const HolderResolver resolver;
  ResolveStats cold;
  ASSERT_EQ(resolver.resolve({key}, &cold).at(0).status, HolderStatus::Found);
  EXPECT_TRUE(cold.full_scan);
  EXPECT_GT(cold.descriptors, 0u);
  // The remembered holder still holds it: one readlink, no scan.
  ResolveStats warm;
  const Holder again = resolver.resolve({key}, &warm).at(0);
  EXPECT_EQ(again.processes.at(0).pid, getpid());
  EXPECT_FALSE(warm.full_scan);
  EXPECT_EQ(warm.confirmed, 1u);
  EXPECT_EQ(warm.descriptors, 0u);

  // Hand the socket to a child and close ours: the hint fails, a full scan finds the child.
  const pid_t child = forkHolder();
  ASSERT_GT(child, 0);
  listener.closeEarly(listener.lastClient());
  ResolveStats moved;
  const Holder h = resolver.resolve({key}, &moved).at(0);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  EXPECT_TRUE(moved.full_scan);
  ASSERT_EQ(h.status, HolderStatus::Found) << h.reason;
  ASSERT_EQ(h.processes.size(), 1u);
  EXPECT_EQ(h.processes[0].pid, child);
}

TEST(HolderResolverTest, ASingleLookupDoesNotMakeTheNextBatchScanAgain) {
  Listener listener("127.0.0.1");
  std::vector<ConnectionKey> keys;
  for (int i = 0; i < 3; ++i) {
    keys.push_back(listener.connectFrom("127.0.0.1"));
  }
  const HolderResolver resolver;
  ResolveStats st;
  resolver.resolve(keys, &st);
  EXPECT_TRUE(st.full_scan);
  resolver.resolve({keys[1]}, &st);
  EXPECT_FALSE(st.full_scan);
  resolver.resolve(keys, &st);  // keys[0] and keys[2] are still remembered.
  EXPECT_FALSE(st.full_scan);
  EXPECT_EQ(st.confirmed, 3u);
}

TEST(HolderResolverTest, ADuplicatedDescriptorIsOneHolder) {
  Listener listener("127.0.0.1");
  const ConnectionKey key = listener.connectFrom("127.0.0.1");
  const int copy = dup(listener.lastClient());
  const Holder h = HolderResolver().resolveOne(key);
  close(copy);
  ASSERT_EQ(h.status, HolderStatus::Found);
  EXPECT_EQ(h.processes.size(), 1u);
}

TEST(HolderServiceTest, DeliversOnItsOwnThreadAndRefreshesPeriodically) {
  Listener listener("127.0.0.1");
  const ConnectionKey key = listener.connectFrom("127.0.0.1");
  HolderService service;
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Holder> once;
  std::thread::id once_thread;
  service.resolve({key}, [&](std::vector<Holder> holders, const ResolveStats&) {
    std::lock_guard lock(mu);
    once = holders.at(0);
    once_thread = std::this_thread::get_id();
    cv.notify_all();
  });
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 5s, [&] { return once.has_value(); }));
  }
  EXPECT_EQ(once->status, HolderStatus::Found);
  EXPECT_NE(once_thread, std::this_thread::get_id());

  std::atomic<int> rounds{0};
  std::atomic<int> found{0};
  service.every(
      20ms, [&] { return std::vector<ConnectionKey>{key}; },
      [&](std::vector<Holder> holders, const ResolveStats&) {
        found += holders.at(0).status == HolderStatus::Found ? 1 : 0;
        ++rounds;
        cv.notify_all();
      });
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 5s, [&] { return rounds >= 3; }));
  }
  EXPECT_EQ(found.load(), rounds.load());
  service.every(0ms, nullptr, nullptr);  // Cancelled: the service then only serves requests.
}

// HOLDER_CHANGED: the holder monitor, over real loopback connections of this process, makes
// one event per registration when it first finds the holder, none while later looks find the
// same one, and one more when the connection changes hands.
class HolderEventsTest : public ::testing::Test {
 protected:
  /// Polls the watch until `done` or 5 s pass; returns the HOLDER_CHANGED events seen.
  std::vector<registry::Event> holderEvents(registry::Watch& watch,
                                            const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    do {
      std::vector<registry::Event> events;
      EXPECT_TRUE(watch.poll(1000, events).ok());
      for (auto& e : events) {
        if (e.type == registry::EventType::HolderChanged) {
          seen_.push_back(std::move(e));
        }
      }
      if (done()) {
        break;
      }
      std::this_thread::sleep_for(5ms);  // Polling a condition with a deadline.
    } while (std::chrono::steady_clock::now() < deadline);
    return std::exchange(seen_, {});
  }

  /// Waits until the monitor recorded `more` batches after the current one.
  bool refreshes(const api::HolderMonitor& monitor, uint64_t more) {
    const uint64_t target = monitor.batches() + more;
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (monitor.batches() < target) {
      if (std::chrono::steady_clock::now() > deadline) {
        return false;
      }
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }

  /// Waits until the registry publishes `name`'s first holder process in `state`.
  static bool eventuallyState(const registry::Registry& reg, const std::string& name,
                              const std::string& state) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline) {
      auto r = reg.find(name);
      if (r && r->holder && !r->holder->processes.empty() &&
          r->holder->processes[0].state == state) {
        return true;
      }
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }

  std::vector<registry::Event> seen_;
};

TEST_F(HolderEventsTest, OneEventWhenFirstFoundNoneForTheSameHolderOneWhenItChanges) {
  registry::Registry reg;
  auto watch = std::move(reg.watch(0, {}).value());
  Listener listener("127.0.0.1");
  std::vector<int> clients;
  for (int i = 0; i < 3; ++i) {
    const ConnectionKey key = listener.connectFrom("127.0.0.1");
    clients.push_back(listener.lastClient());
    registry::NodeInfo node;
    node.name = "n" + std::to_string(i);
    node.port = static_cast<uint16_t>(5000 + i);
    ASSERT_TRUE(reg.add(node, {key.remote.toString(), -1, key.local.toString()}).ok());
  }
  api::HolderMonitor monitor(reg, 20ms);

  // First found: exactly one event per registration, carrying this process.
  auto first = holderEvents(*watch, [&] { return seen_.size() >= 3; });
  ASSERT_EQ(first.size(), 3u);
  std::set<std::string> names;
  for (const auto& e : first) {
    names.insert(e.registration->node.name);
    ASSERT_TRUE(e.registration->holder);
    EXPECT_EQ(e.registration->holder->status, registry::HolderFact::Status::Found);
    ASSERT_EQ(e.registration->holder->processes.size(), 1u);
    EXPECT_EQ(e.registration->holder->processes[0].pid, getpid());
    // The event's registration is the one the registry now publishes.
    EXPECT_EQ(reg.find(e.registration->node.name)->holder, e.registration->holder);
  }
  EXPECT_EQ(names, (std::set<std::string>{"n0", "n1", "n2"}));

  // Later looks find the same holders: no events (only the check time would move).
  ASSERT_TRUE(refreshes(monitor, 5));
  EXPECT_TRUE(holderEvents(*watch, [] { return true; }).empty());
  EXPECT_EQ(reg.stats().holder_changes, 3u);

  // n2's connection changes hands: a child keeps only that one, and this process closes it.
  const pid_t child = forkHolder({clients[0], clients[1]});
  ASSERT_GT(child, 0);
  listener.closeEarly(clients[2]);
  auto moved = holderEvents(*watch, [&] { return !seen_.empty(); });
  // Settled: more looks find the child again, and n0 and n1 still this process. The child
  // stopped is the same holder in another state: published, no event.
  kill(child, SIGSTOP);
  const bool stopped = eventuallyState(reg, "n2", "stopped");
  const bool settled = refreshes(monitor, 5);
  auto after = holderEvents(*watch, [] { return true; });
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  ASSERT_TRUE(settled);
  EXPECT_TRUE(stopped);
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_EQ(moved[0].registration->node.name, "n2");
  ASSERT_EQ(moved[0].registration->holder->processes.size(), 1u);
  EXPECT_EQ(moved[0].registration->holder->processes[0].pid, child);
  EXPECT_GT(moved[0].revision, first.back().revision);
  EXPECT_TRUE(after.empty()) << after.size() << " more events";
  EXPECT_EQ(reg.find("n0")->holder->processes.at(0).pid, getpid());
}

}  // namespace
}  // namespace epmdx::holder
