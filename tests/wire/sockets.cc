// Blocking loopback sockets for tests and benchmarks; every wait is bounded by a deadline.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <random>
#include <thread>

#include "tests/wire/wire.h"

namespace epmdx::wire {
namespace {

using Clock = std::chrono::steady_clock;

bool portIsFree(uint16_t port) {
  const int fd = socket(AF_INET6, SOCK_STREAM, 0);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_any;  // Dual stack: covers 0.0.0.0 too.
  a.sin6_port = htons(port);
  const bool free = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return free;
}

void setNoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// One read with a deadline: >0 bytes, 0 on EOF, -1 on reset/error, -2 on timeout.
ssize_t readSome(int fd, char* buf, size_t cap, Clock::time_point deadline) {
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      return -2;
    }
    pollfd p{fd, POLLIN, 0};
    const int r = poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) {
      continue;
    }
    if (r <= 0) {
      return -2;
    }
    const ssize_t n = recv(fd, buf, cap, 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    return n < 0 ? -1 : n;
  }
}

}  // namespace

uint16_t freePort() {
  // Below the kernel's ephemeral range: tests and benchmarks that hold thousands of client
  // sockets take ports from that range, and a daemon would then find "its" port taken (and
  // exit 0 quietly, as OTP's epmd does). Random, and checked free on every address.
  static std::mt19937 random(static_cast<unsigned>(getpid()) ^
                             static_cast<unsigned>(std::random_device()()));
  int low = 32768;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> low;
  std::uniform_int_distribution<int> pick(10000, std::max(10001, low - 1));
  for (int i = 0; i < 1000; ++i) {
    const auto port = static_cast<uint16_t>(pick(random));
    if (port >= 4369 && port <= 4371) {
      continue;  // Never the default ports: other people's daemons run there.
    }
    if (portIsFree(port)) {
      return port;
    }
  }
  return 0;
}

int connectTo(const std::string& host, uint16_t port) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_INET;
  if (host.find(':') != std::string::npos) {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    inet_pton(AF_INET6, host.c_str(), &a6->sin6_addr);
    len = sizeof *a6;
    family = AF_INET6;
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&ss);
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    inet_pton(AF_INET, host.c_str(), &a4->sin_addr);
    len = sizeof *a4;
  }
  const int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return -1;
  }
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    close(fd);
    return -1;
  }
  setNoDelay(fd);
  return fd;
}

int connectLoopbackFrom(uint16_t port, unsigned source) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return -1;
  }
  sockaddr_in src{};
  src.sin_family = AF_INET;
  src.sin_addr.s_addr = htonl(0x7F000000u | (2 + source % 253));
  bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  setNoDelay(fd);
  return fd;
}

bool waitForPort(uint16_t port, std::chrono::milliseconds timeout, const std::string& host) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    const int fd = connectTo(host, port);
    if (fd >= 0) {
      close(fd);
      return true;
    }
    // Polling a condition with a deadline, not a sleep standing in for synchronisation.
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

bool sendAll(int fd, const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
}

Outcome readUntilClose(int fd, std::chrono::milliseconds timeout) {
  Outcome o;
  const auto deadline = Clock::now() + timeout;
  char buf[65536];
  for (;;) {
    const ssize_t n = readSome(fd, buf, sizeof buf, deadline);
    if (n > 0) {
      o.bytes.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0 || n == -1) {
      o.closed = true;
      o.reset = n == -1;
    }
    return o;
  }
}

std::string readN(int fd, size_t want, std::chrono::milliseconds timeout) {
  std::string out;
  const auto deadline = Clock::now() + timeout;
  char buf[4096];
  while (out.size() < want) {
    const ssize_t n = readSome(fd, buf, std::min(sizeof buf, want - out.size()), deadline);
    if (n <= 0) {
      break;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

void setLingerZero(int fd) {
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

}  // namespace epmdx::wire
