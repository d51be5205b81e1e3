// SIGTERM on a real epmdx process ends it with exit 0 in under a second, whatever the
// admin clients do: here gRPC watch streams whose client stopped reading at the TCP level
// (a full receive window), so the daemon's last writes can never complete.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "tests/support/net.h"
#include "tests/support/process.h"

namespace epmdx::testing {
namespace {

using namespace std::chrono_literals;

// --- A minimal HTTP/2 client that opens WatchNodes streams and then never reads. ---------

void put24(std::string& out, size_t v) {
  out += static_cast<char>((v >> 16) & 0xFF);
  out += static_cast<char>((v >> 8) & 0xFF);
  out += static_cast<char>(v & 0xFF);
}

void put32(std::string& out, uint32_t v) {
  out += static_cast<char>((v >> 24) & 0xFF);
  put24(out, v & 0xFFFFFF);
}

std::string h2Frame(uint8_t type, uint8_t flags, uint32_t stream, const std::string& payload) {
  std::string f;
  put24(f, payload.size());
  f += static_cast<char>(type);
  f += static_cast<char>(flags);
  put32(f, stream);
  return f + payload;
}

// HPACK integer with a 7-bit prefix (RFC 7541 5.1), for string lengths without Huffman.
void hpackLength(std::string& out, size_t n) {
  if (n < 127) {
    out += static_cast<char>(n);
    return;
  }
  out += static_cast<char>(127);
  n -= 127;
  while (n >= 128) {
    out += static_cast<char>((n & 0x7F) | 0x80);
    n >>= 7;
  }
  out += static_cast<char>(n);
}

// "Literal header field without indexing, new name" (RFC 7541 6.2.2): no table state.
void hpackLiteral(std::string& out, const std::string& name, const std::string& value) {
  out += '\0';
  hpackLength(out, name.size());
  out += name;
  hpackLength(out, value.size());
  out += value;
}

constexpr uint8_t kData = 0, kHeaders = 1, kSettings = 4, kWindowUpdate = 8;
constexpr uint8_t kEndStream = 1, kAck = 1, kEndHeaders = 4;

/// Opens `streams` WatchNodes streams (with the initial state) on one connection whose
/// receive buffer is as small as the kernel allows, then stops reading for good.
int openStalledWatches(uint16_t grpc_port, const std::string& token, int streams) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int small = 1;  // The kernel rounds it up to its minimum.
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(grpc_port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  std::string out = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  // Flow control wide open, so that only TCP holds the server back.
  std::string settings;
  settings += '\0';
  settings += '\4';  // SETTINGS_INITIAL_WINDOW_SIZE
  put32(settings, 0x7FFFFFFF);
  out += h2Frame(kSettings, 0, 0, settings);
  std::string increment;
  put32(increment, 0x7FFFFFFF - 65535);
  out += h2Frame(kWindowUpdate, 0, 0, increment);
  sendAll(fd, out);
  // Acknowledge the server's SETTINGS (it is the first frame it sends), then never read.
  const std::string head = readN(fd, 9, 2000ms);
  if (head.size() != 9 || head[3] != kSettings) {
    close(fd);
    return -1;
  }
  const size_t len = (static_cast<uint8_t>(head[0]) << 16) | (static_cast<uint8_t>(head[1]) << 8) |
                     static_cast<uint8_t>(head[2]);
  readN(fd, len, 2000ms);
  out = h2Frame(kSettings, kAck, 0, "");
  const std::string request = std::string("\0\0\0\0\2\x10\x01", 7);  // send_initial_state
  for (int i = 0; i < streams; ++i) {
    const uint32_t id = 1 + 2 * static_cast<uint32_t>(i);
    std::string hdr;
    hpackLiteral(hdr, ":method", "POST");
    hpackLiteral(hdr, ":scheme", "http");
    hpackLiteral(hdr, ":path", "/epmdx.v1.Registry/WatchNodes");
    hpackLiteral(hdr, ":authority", "127.0.0.1");
    hpackLiteral(hdr, "content-type", "application/grpc");
    hpackLiteral(hdr, "te", "trailers");
    hpackLiteral(hdr, "authorization", "Bearer " + token);
    out += h2Frame(kHeaders, kEndHeaders, id, hdr);
    out += h2Frame(kData, kEndStream, id, request);
  }
  sendAll(fd, out);
  return fd;
}

/// Bytes the kernel holds unsent on the daemon's side of the connection to `client_port`
/// (tx_queue of /proc/net/tcp{,6}; gRPC listens dual-stack): how far its writes are stuck.
size_t serverSendQueue(uint16_t server_port, uint16_t client_port) {
  std::ifstream v4("/proc/net/tcp");
  std::ifstream v6("/proc/net/tcp6");
  std::stringstream all;
  all << v4.rdbuf() << v6.rdbuf();
  std::string line;
  while (std::getline(all, line)) {
    if (line.find("local_address") != std::string::npos) {
      continue;
    }
    std::istringstream f(line);
    std::string slot, local, remote, state, queues;
    f >> slot >> local >> remote >> state >> queues;
    const auto port_of = [](const std::string& addr) {
      return static_cast<uint16_t>(std::stoul(addr.substr(addr.find(':') + 1), nullptr, 16));
    };
    if (port_of(local) == server_port && port_of(remote) == client_port) {
      return std::stoul(queues.substr(0, queues.find(':')), nullptr, 16);
    }
  }
  return 0;
}

uint16_t localPort(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

TEST(ShutdownTest, SigtermExitsZeroWithinASecondDespiteTcpStalledWatchStreams) {
  const std::string tokens = "/tmp/epmdx-shutdown-test-" + std::to_string(getpid()) + ".tokens";
  std::ofstream(tokens) << "watchtok read\n";
  // A port free a moment ago can be taken before the daemon binds it (it then exits 0
  // quietly, as OTP's does): try another.
  uint16_t port = 0;
  uint16_t grpc_port = 0;
  std::unique_ptr<Process> started;
  for (int attempt = 0; attempt < 5 && !started; ++attempt) {
    port = freePort();
    grpc_port = freePort();
    started = std::make_unique<Process>(std::vector<std::string>{
        epmdxBinary(), "-port", std::to_string(port), "-address", "127.0.0.1",
        "--grpc-listen=127.0.0.1:" + std::to_string(grpc_port), "--http-listen=off",
        "--tokens-file=" + tokens});
    if (!waitForPort(port, 5s) || !waitForPort(grpc_port, 5s) || !started->running()) {
      started.reset();
    }
  }
  ASSERT_TRUE(started) << "epmdx did not start";
  Process& daemon = *started;

  // 300 nodes with 1000 bytes of extra each: every stream's initial state is ~330 KB, and
  // 3 connections x 16 streams queue far more than the kernel's socket buffers hold.
  std::vector<int> nodes;
  for (int i = 0; i < 300; ++i) {
    const int fd = connectTo("127.0.0.1", port);
    ASSERT_GE(fd, 0);
    sendAll(fd, frame(alive2Body("n" + std::to_string(i), static_cast<uint16_t>(1000 + i), 6, 5,
                                 std::string(1000, 'e'))));
    ASSERT_EQ(readN(fd, 6, 2000ms).size(), 6u);
    nodes.push_back(fd);
  }
  std::vector<int> stalled;
  for (int c = 0; c < 3; ++c) {
    const int fd = openStalledWatches(grpc_port, "watchtok", 16);
    ASSERT_GE(fd, 0);
    stalled.push_back(fd);
  }
  // The daemon's writes are stuck in TCP: megabytes queued on its side, none read.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  size_t queued = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    queued = 0;
    for (int fd : stalled) {
      queued += serverSendQueue(grpc_port, localPort(fd));
    }
    if (queued > 3 * 1024 * 1024) {
      break;
    }
    std::this_thread::sleep_for(20ms);  // Polling a condition, with a deadline.
  }
  ASSERT_GT(queued, 3u * 1024 * 1024) << "the watch streams never stalled";

  const auto t0 = std::chrono::steady_clock::now();
  daemon.signal(SIGTERM);
  const auto status = daemon.wait(5s);
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(status.has_value()) << "still running 5 s after SIGTERM";
  EXPECT_EQ(*status, 0);
  EXPECT_LT(took, 1s) << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                      << " ms from SIGTERM to exit";
  std::printf(
      "SIGTERM to exit: %lld ms, %zu bytes stuck in the daemon's send queues\n",
      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()),
      queued);
  for (int fd : stalled) {
    close(fd);
  }
  for (int fd : nodes) {
    close(fd);
  }
  unlink(tokens.c_str());
}

}  // namespace
}  // namespace epmdx::testing
