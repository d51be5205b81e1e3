#include "server/epmd/client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "server/common/syscall.h"
#include "server/epmd/codec.h"

namespace epmdx::epmd {
namespace {

int connectLocal(uint16_t port) {
  int fd = socket(AF_INET6, SOCK_STREAM, 0);
  if (fd >= 0) {
    sockaddr_in6 a6{};
    a6.sin6_family = AF_INET6;
    a6.sin6_port = htons(port);
    a6.sin6_addr = in6addr_loopback;
    if (connect(fd, reinterpret_cast<sockaddr*>(&a6), sizeof a6) == 0) {
      return fd;
    }
    ::close(fd);
  }
  fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    return -1;
  }
  sockaddr_in a4{};
  a4.sin_family = AF_INET;
  a4.sin_port = htons(port);
  a4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a4), sizeof a4) == 0) {
    return fd;
  }
  ::close(fd);
  return -1;
}

bool writeAll(int fd, const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = sys::writeSome(fd, bytes.data() + off, bytes.size() - off);
    if (n <= 0) {
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
}

/// OTP's read_fill: `len` when filled, 0 on EOF, < 0 on error.
int readFill(int fd, char* buf, int len) {
  int got = 0;
  while (got < len) {
    const ssize_t n = sys::readSome(fd, buf + got, static_cast<size_t>(len - got));
    if (n <= 0) {
      return static_cast<int>(n);  // As OTP: a short read then EOF reports 0, not the count.
    }
    got += static_cast<int>(n);
  }
  return len;
}

std::string packet(uint8_t code, const std::string& payload = {}) {
  const size_t len = payload.size() + 1;
  std::string out;
  out += static_cast<char>((len >> 8) & 0xFF);
  out += static_cast<char>(len & 0xFF);
  out += static_cast<char>(code);
  out += payload;
  return out;
}

int twoOrSevenReply(int fd, int want, ClientCommand command) {
  char buf[16] = {};
  const int r = readFill(fd, buf, want);
  ::close(fd);
  if (r == want) {
    if (command == ClientCommand::Stop) {
      std::printf("%.7s\n", buf);
      return 0;
    }
    if (buf[0] == 'O' && buf[1] == 'K') {
      std::printf("Killed\n");
      return 0;
    }
    std::printf("Killing not allowed - living nodes in database.\n");
    return 1;
  }
  if (r < 0) {
    std::printf("epmd: failed to read answer from local epmd\n");
    return 1;
  }
  buf[r] = '\0';
  std::printf("epmd: local epmd responded with <%s>\n", buf);
  return 1;
}

}  // namespace

int runClient(ClientCommand command, uint16_t port, const std::string& stop_name) {
  const bool silent = command == ClientCommand::Started;
  if (command == ClientCommand::Stop && stop_name.size() > 1000) {
    std::printf("epmd: Name too long!");
    return 1;
  }
  const int fd = connectLocal(port);
  if (fd < 0) {
    if (!silent) {
      std::fprintf(stderr, "epmd: Cannot connect to local epmd\n");
    }
    return 1;
  }
  std::string request;
  switch (command) {
    case ClientCommand::Names:
    case ClientCommand::Started:
      request = packet(kNamesReq);
      break;
    case ClientCommand::Dump:
      request = packet(kDumpReq);
      break;
    case ClientCommand::Kill:
      request = packet(kKillReq);
      break;
    case ClientCommand::Stop:
      request = packet(kStopReq, stop_name);
      break;
  }
  if (!writeAll(fd, request)) {
    std::printf("epmd: Can't write to epmd\n");
    ::close(fd);
    return 1;
  }
  if (command == ClientCommand::Kill) {
    return twoOrSevenReply(fd, 2, command);
  }
  if (command == ClientCommand::Stop) {
    return twoOrSevenReply(fd, 7, command);
  }
  unsigned char header[4];
  if (readFill(fd, reinterpret_cast<char*>(header), 4) != 4) {
    if (!silent) {
      std::printf("epmd: no response from local epmd\n");
    }
    ::close(fd);
    return 1;
  }
  const uint32_t epmd_port = (uint32_t{header[0]} << 24) | (uint32_t{header[1]} << 16) |
                             (uint32_t{header[2]} << 8) | header[3];
  if (!silent) {
    std::printf("epmd: up and running on port %d with data:\n", static_cast<int>(epmd_port));
  }
  char buf[kInBufSize];
  for (;;) {
    const ssize_t n = sys::readSome(fd, buf, sizeof buf);
    if (n <= 0) {
      break;
    }
    if (!silent) {
      std::fwrite(buf, 1, static_cast<size_t>(n), stdout);
    }
  }
  ::close(fd);
  return 0;
}

}  // namespace epmdx::epmd
