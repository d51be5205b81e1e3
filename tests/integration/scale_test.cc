// epmdx holds far more live registrations than OTP's select()-bound epmd (about 1,016):
// 15,000 connections registered at once, all listed, all looked up, all gone on close.

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include "tests/support/net.h"
#include "tests/support/process.h"

namespace epmdx::testing {
namespace {

using namespace std::chrono_literals;

TEST(Scale, FifteenThousandLiveRegistrations) {
  constexpr int kNodes = 15000;
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  // The daemon raises its own limit the same way; both need room for 15,000 sockets.
  ASSERT_GE(rl.rlim_cur, static_cast<rlim_t>(kNodes + 100))
      << "this machine's open-file hard limit is too low to test 15,000 registrations";
  const uint16_t port = freePort();
  Process epmdx(
      {epmdxBinary(), "-port", std::to_string(port), "--grpc-listen=off", "--http-listen=off"});
  ASSERT_TRUE(waitForPort(port, 5s));
  std::vector<int> fds;
  fds.reserve(kNodes);
  for (int i = 0; i < kNodes; ++i) {
    const int fd = connectTo("127.0.0.1", port);
    ASSERT_GE(fd, 0) << "connection " << i;
    ASSERT_TRUE(sendAll(fd, frame(alive2Body("node" + std::to_string(i), 10000 + i % 50000))));
    const std::string reply = readN(fd, 6, 5000ms);
    ASSERT_EQ(reply.size(), 6u) << "registration " << i;
    ASSERT_EQ(reply[1], 0) << "registration " << i;
    fds.push_back(fd);
  }
  // NAMES lists all of them.
  const int n = connectTo("127.0.0.1", port);
  sendAll(n, frame("n"));
  const Outcome names = readUntilClose(n, 10000ms);
  close(n);
  ASSERT_TRUE(names.closed);
  size_t lines = 0;
  for (char c : names.bytes) {
    lines += c == '\n';
  }
  EXPECT_EQ(lines, static_cast<size_t>(kNodes));
  // Spot lookups across the range.
  for (int i = 0; i < kNodes; i += 1499) {
    const int q = connectTo("127.0.0.1", port);
    sendAll(q, frame("znode" + std::to_string(i)));
    const Outcome o = readUntilClose(q, 2000ms);
    close(q);
    ASSERT_GE(o.bytes.size(), 4u);
    EXPECT_EQ(o.bytes[1], 0) << "node" << i;
    const int p = (static_cast<uint8_t>(o.bytes[2]) << 8) | static_cast<uint8_t>(o.bytes[3]);
    EXPECT_EQ(p, 10000 + i % 50000);
  }
  for (int fd : fds) {
    close(fd);
  }
  // Every registration ends with its connection.
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  size_t left = kNodes;
  while (left > 0 && std::chrono::steady_clock::now() < deadline) {
    const int q = connectTo("127.0.0.1", port);
    sendAll(q, frame("n"));
    const Outcome o = readUntilClose(q, 5000ms);
    close(q);
    left = 0;
    for (char c : o.bytes) {
      left += c == '\n';
    }
  }
  EXPECT_EQ(left, 0u);
}

}  // namespace
}  // namespace epmdx::testing
