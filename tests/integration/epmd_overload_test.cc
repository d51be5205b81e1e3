// The epmd port past the descriptor limit, on a real epmdx process whose RLIMIT_NOFILE is
// lowered (prlimit): idle connections are shed oldest first so registrations and lookups
// are still answered at once; with the table full of registrations, new connections are
// closed at once instead of hanging, the daemon does not spin, and the log is not flooded.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "tests/support/net.h"
#include "tests/support/process.h"

namespace epmdx::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

long long msSince(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
}

/// CPU time (user + system, in clock ticks) the process has used so far.
long cpuTicks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream f(all.substr(all.rfind(')') + 2));
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; f >> field; ++i) {
    if (i == 14) {
      utime = std::stol(field);
    } else if (i == 15) {
      stime = std::stol(field);
      break;
    }
  }
  return utime + stime;
}

/// The sum of `field=N` over the log's lines.
long sumField(const std::string& log, const std::string& field) {
  long sum = 0;
  const std::regex re(field + "=([0-9]+)");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), re); it != std::sregex_iterator();
       ++it) {
    sum += std::stol((*it)[1]);
  }
  return sum;
}

/// The daemon's side of the connection between `server_port` and `client_port`, from
/// /proc/net/tcp{,6}: its TCP state (1 established, 4 FIN-wait-1, ...; 0 if none) and the
/// bytes queued unsent.
std::pair<int, size_t> serverSide(uint16_t server_port, uint16_t client_port) {
  std::ifstream v4("/proc/net/tcp");
  std::ifstream v6("/proc/net/tcp6");
  std::stringstream all;
  all << v4.rdbuf() << v6.rdbuf();
  std::string line;
  while (std::getline(all, line)) {
    std::istringstream f(line);
    std::string slot, local, remote, state, queues;
    f >> slot >> local >> remote >> state >> queues;
    if (slot == "sl" || local.find(':') == std::string::npos ||
        remote.find(':') == std::string::npos) {
      continue;
    }
    const auto port_of = [](const std::string& addr) {
      return static_cast<uint16_t>(std::stoul(addr.substr(addr.find(':') + 1), nullptr, 16));
    };
    if (port_of(local) == server_port && port_of(remote) == client_port) {
      return {std::stoi(state, nullptr, 16),
              std::stoul(queues.substr(0, queues.find(':')), nullptr, 16)};
    }
  }
  return {0, 0};
}

size_t countLines(const std::string& text, const std::string& needle) {
  size_t n = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    n += line.find(needle) != std::string::npos ? 1 : 0;
  }
  return n;
}

class OverloadTest : public ::testing::Test {
 protected:
  void startDaemon(int nofile, const std::vector<std::string>& extra = {}) {
    token_ = "/tmp/epmdx-overload-token-" + std::to_string(getpid());
    // A port free a moment ago can be taken before the daemon binds it (it then exits 0
    // quietly, as OTP's does): try another.
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = freePort();
      http_port_ = freePort();
      std::vector<std::string> argv{
          "prlimit",
          "--nofile=" + std::to_string(nofile) + ":" + std::to_string(nofile),
          "--",
          epmdxBinary(),
          "-port",
          std::to_string(port_),
          "-address",
          "127.0.0.1",
          "--grpc-listen=127.0.0.1:0",
          "--http-listen=127.0.0.1:" + std::to_string(http_port_),
          "--token-out=" + token_};
      argv.insert(argv.end(), extra.begin(), extra.end());
      daemon_ = std::make_unique<Process>(argv);
      if (waitForPort(port_, 5s) && waitForPort(http_port_, 5s) && daemon_->running()) {
        return;
      }
    }
    FAIL() << "epmdx did not start";
  }
  void TearDown() override {
    for (int fd : held_) {
      close(fd);
    }
    daemon_.reset();
    unlink(token_.c_str());
  }

  /// Registers `name`; the open connection, or -1 if the daemon closed it unanswered.
  int tryRegister(const std::string& name, uint16_t node_port) {
    const int fd = connectTo("127.0.0.1", port_);
    if (fd < 0) {
      return -1;
    }
    sendAll(fd, frame(alive2Body(name, node_port)));
    const std::string r = readN(fd, 6, 3000ms);
    if (r.size() != 6 || r[1] != 0) {
      close(fd);
      return -1;
    }
    return fd;
  }
  Outcome lookup(const std::string& name) {
    const int fd = connectTo("127.0.0.1", port_);
    sendAll(fd, frame("z" + name));
    Outcome o = readUntilClose(fd, 3000ms);
    close(fd);
    return o;
  }
  /// The HTTP liveness probe answers: the admin servers still have descriptors.
  bool livez() {
    const int fd = connectTo("127.0.0.1", http_port_);
    if (fd < 0) {
      return false;
    }
    sendAll(fd, "GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    const Outcome o = readUntilClose(fd, 3000ms);
    close(fd);
    return o.bytes.rfind("HTTP/1.1 200", 0) == 0;
  }

  uint16_t port_ = 0;
  uint16_t http_port_ = 0;
  std::string token_;
  std::unique_ptr<Process> daemon_;
  std::vector<int> held_;
};

TEST_F(OverloadTest, IdleConnectionsPastTheLimitAreShedOldestFirst) {
  startDaemon(256);
  // 400 connections that never send a byte, against a table of 256 descriptors.
  for (int i = 0; i < 400; ++i) {
    const int fd = connectTo("127.0.0.1", port_);
    ASSERT_GE(fd, 0) << i;
    held_.push_back(fd);
  }
  // The oldest idle connection is shed: its client sees the close.
  const auto t_shed = Clock::now();
  EXPECT_TRUE(readUntilClose(held_.front(), 5000ms).closed);
  std::printf("oldest idle connection shed after %lld ms\n", msSince(t_shed));

  const auto t_reg = Clock::now();
  const int reg = tryRegister("busy", 4242);
  const auto reg_ms = msSince(t_reg);
  ASSERT_GE(reg, 0) << "registration not answered";
  held_.push_back(reg);
  const auto t_look = Clock::now();
  const Outcome found = lookup("busy");
  const auto look_ms = msSince(t_look);
  ASSERT_GE(found.bytes.size(), 4u);
  EXPECT_EQ(found.bytes.substr(0, 4), bytes({119, 0, 0x10, 0x92}));  // Port 4242.
  EXPECT_LT(reg_ms, 1000);
  EXPECT_LT(look_ms, 1000);
  std::printf(
      "with 400 idle connections on a 256-descriptor daemon: register %lld ms, "
      "lookup %lld ms\n",
      reg_ms, look_ms);
  // Oldest first: the connections shed are the first ones opened, the newest are open.
  size_t shed = 0;
  while (shed < 400 && readUntilClose(held_[shed], 5ms).closed) {
    ++shed;
  }
  EXPECT_GT(shed, 100u);
  EXPECT_FALSE(readUntilClose(held_[399], 200ms).closed);
  std::printf("%zu of the 400 idle connections shed, the oldest\n", shed);
  EXPECT_TRUE(livez());

  // One summary line, with the count, and no line per failed accept.
  const std::string log = daemon_->stderrText();
  EXPECT_EQ(countLines(log, "accept failed"), 0u) << log;
  const size_t lines = countLines(log, "short of descriptors");
  EXPECT_GE(lines, 1u);
  EXPECT_LE(lines, 2u) << log;
  EXPECT_GT(sumField(log, "shed_silent"), 0) << log;
}

TEST_F(OverloadTest, TableFullOfRegistrationsClosesNewConnectionsAtOnceWithoutSpinning) {
  startDaemon(128);
  // Registrations are never shed: fill the table with them.
  int refused_at = -1;
  for (int i = 0; i < 200; ++i) {
    const auto t0 = Clock::now();
    const int fd = tryRegister("r" + std::to_string(i), static_cast<uint16_t>(5000 + i));
    if (fd < 0) {
      EXPECT_LT(msSince(t0), 1000) << "a connection past the limit must not hang";
      refused_at = i;
      break;
    }
    held_.push_back(fd);
  }
  ASSERT_GT(refused_at, 60) << "the table should hold most of 128 descriptors";
  std::printf("%d registrations held on a 128-descriptor daemon\n", refused_at);

  // Further clients are closed at once, and the daemon idles instead of spinning.
  const long cpu0 = cpuTicks(daemon_->pid());
  const auto t0 = Clock::now();
  for (int i = 0; i < 50; ++i) {
    const int fd = connectTo("127.0.0.1", port_);
    ASSERT_GE(fd, 0);
    sendAll(fd, frame("zr0"));
    const auto t = Clock::now();
    EXPECT_TRUE(readUntilClose(fd, 2000ms).closed) << i;
    EXPECT_LT(msSince(t), 1000) << i;
    close(fd);
  }
  while (Clock::now() - t0 < 1s) {
    std::this_thread::sleep_for(50ms);  // The measurement window for the CPU figure.
  }
  const long ticks = cpuTicks(daemon_->pid()) - cpu0;
  EXPECT_LT(ticks, sysconf(_SC_CLK_TCK) / 4) << "the daemon used " << ticks << " ticks";

  // Room again: the reserve was taken back, so new clients are served normally.
  for (int i = 0; i < 10; ++i) {
    close(held_.back());
    held_.pop_back();
  }
  const auto deadline = Clock::now() + 5s;
  int again = -1;
  while (again < 0 && Clock::now() < deadline) {
    again = tryRegister("again", 6000);
  }
  ASSERT_GE(again, 0);
  held_.push_back(again);
  EXPECT_EQ(lookup("again").bytes.substr(0, 2), bytes({119, 0}));

  const std::string log = daemon_->stderrText();
  EXPECT_EQ(countLines(log, "accept failed"), 0u);
  EXPECT_LE(countLines(log, "short of descriptors"), 2u) << log;
  EXPECT_GE(sumField(log, "closed_at_accept"), 1) << log;
}

TEST_F(OverloadTest, AReplyTheClientNeverReadsIsCutAtThePacketTimeout) {
  // 8,000 registrations held by this process: raise its own descriptor limit.
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  ASSERT_GE(rl.rlim_cur, 8500u) << "this test needs 8,500 descriptors";
  startDaemon(static_cast<int>(rl.rlim_max), {"-packet_timeout", "1"});
  // NAMES with 8,000 long names is ~2.1 MB: more than a minimal receive buffer and the
  // daemon's send buffer on loopback (about 1.6 MB) hold, so the reply stalls in the daemon
  // when the client does not read. Without a timeout it would hold the descriptor forever.
  constexpr int kNodes = 8000;
  for (int i = 0; i < kNodes; ++i) {
    std::string name = "n" + std::to_string(i);
    name += std::string(250 - name.size(), 'x');
    const int fd = tryRegister(name, static_cast<uint16_t>(1 + i));
    ASSERT_GE(fd, 0) << i;
    held_.push_back(fd);
  }
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int small = 1;  // The kernel rounds it up to its minimum.
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port_);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  held_.push_back(fd);
  const auto t0 = Clock::now();
  sendAll(fd, frame("n"));
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const uint16_t client_port = ntohs(a.sin_port);
  // Stalled: the daemon's socket is still established (it holds the descriptor) with bytes
  // queued that the client does not take.
  std::pair<int, size_t> side{0, 0};
  while (side.second == 0 && Clock::now() - t0 < 5s) {
    side = serverSide(port_, client_port);
    std::this_thread::sleep_for(20ms);  // Polling a condition, with a deadline.
  }
  ASSERT_GT(side.second, 0u) << "the reply never stalled";
  ASSERT_EQ(side.first, 1) << "the daemon closed at once: the reply fit in the kernel";
  // Closed after the packet timeout (the sweep: 1 s + 1 s), not kept.
  while (serverSide(port_, client_port).first == 1 && Clock::now() - t0 < 10s) {
    std::this_thread::sleep_for(20ms);  // Polling a condition, with a deadline.
  }
  const auto took = msSince(t0);
  EXPECT_NE(serverSide(port_, client_port).first, 1) << "still held after " << took << " ms";
  EXPECT_GE(took, 1000);
  std::printf("a stalled NAMES reply was cut after %lld ms\n", took);
}

}  // namespace
}  // namespace epmdx::testing
