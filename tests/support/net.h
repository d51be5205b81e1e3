#pragma once

// Blocking socket helpers for tests: real TCP on loopback, every wait bounded by a deadline.

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>

namespace epmdx::testing {

/// A port that was free a moment ago (bound to port 0, then released).
uint16_t freePort();

/// Connects to host:port (IPv4 or IPv6 literal). Returns -1 on failure.
int connectTo(const std::string& host, uint16_t port);

/// Retries connecting until it succeeds or `timeout` passes (a daemon starting up).
bool waitForPort(uint16_t port, std::chrono::milliseconds timeout,
                 const std::string& host = "127.0.0.1");

bool sendAll(int fd, const std::string& bytes);

/// What a server did with a connection: the bytes it sent, and whether it closed.
struct Outcome {
  std::string bytes;
  bool closed = false;  // EOF or reset seen before the deadline.
  bool reset = false;   // The close was a reset.
};

/// Reads until the peer closes or `timeout` passes.
Outcome readUntilClose(int fd, std::chrono::milliseconds timeout);

/// Reads exactly n bytes or until close/timeout.
std::string readN(int fd, size_t n, std::chrono::milliseconds timeout);

/// A byte string from small integers: bytes({119, 1}).
std::string bytes(std::initializer_list<int> values);

/// Frames an epmd request: 2-byte big-endian length + body.
std::string frame(const std::string& body);

/// An ALIVE2_REQ body.
std::string alive2Body(const std::string& name, uint16_t port, uint16_t high = 6, uint16_t low = 5,
                       const std::string& extra = "", uint8_t type = 77);

/// Sets SO_LINGER 0 so close() sends a reset.
void setLingerZero(int fd);

}  // namespace epmdx::testing
