#pragma once

// System calls retried when a signal interrupts them (EINTR), written once: every direct
// read, write, recv, send and accept4 in the daemon and its client goes through these.

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>

namespace epmdx::sys {

/// Calls `call` until it does not fail with EINTR. @return its last result (errno is its).
template <typename Call>
auto retryEintr(Call&& call) {
  for (;;) {
    const auto r = call();
    if (r >= 0 || errno != EINTR) {
      return r;
    }
  }
}

/// One accept4(2), the peer's address in `peer` and `len`: -1 with errno on failure (never
/// EINTR), else the new descriptor.
inline int acceptOne(int fd, sockaddr_storage& peer, socklen_t& len, int flags) {
  return retryEintr([&] {
    len = sizeof peer;
    return ::accept4(fd, reinterpret_cast<sockaddr*>(&peer), &len, flags);
  });
}

/// One recv(2): -1 with errno on failure (never EINTR), 0 at EOF.
inline ssize_t recvSome(int fd, void* buf, size_t len, int flags) {
  return retryEintr([&] { return ::recv(fd, buf, len, flags); });
}

/// One send(2): -1 with errno on failure (never EINTR), else the bytes taken.
inline ssize_t sendSome(int fd, const void* buf, size_t len, int flags) {
  return retryEintr([&] { return ::send(fd, buf, len, flags); });
}

/// One read(2): -1 with errno on failure (never EINTR), 0 at EOF.
inline ssize_t readSome(int fd, void* buf, size_t len) {
  return retryEintr([&] { return ::read(fd, buf, len); });
}

/// One write(2): -1 with errno on failure (never EINTR), else the bytes taken.
inline ssize_t writeSome(int fd, const void* buf, size_t len) {
  return retryEintr([&] { return ::write(fd, buf, len); });
}

}  // namespace epmdx::sys
