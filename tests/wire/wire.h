#pragma once

// The epmd wire as a client sees it, for the tests and the benchmarks: request builders,
// reply parsers, and blocking loopback sockets whose every wait has a deadline. Only the C++
// standard library and POSIX: the benchmarks use it without linking the daemon.

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace epmdx::wire {

// ---- Requests (erts/epmd/src/epmd.h: ALIVE2_REQ 'x', PORT_PLEASE2_REQ 'z', NAMES_REQ 'n').

/// A byte string from small integers: bytes({119, 1}).
std::string bytes(std::initializer_list<int> values);

/// Frames an epmd request: 2-byte big-endian length, then the body.
std::string frame(const std::string& body);

/// An ALIVE2_REQ body (unframed): a normal node (type 77) of versions 6..5 by default.
std::string alive2Body(const std::string& name, uint16_t port, uint16_t high = 6, uint16_t low = 5,
                       const std::string& extra = "", uint8_t type = 77);

/// A framed ALIVE2_REQ with the defaults above.
std::string alive2Request(const std::string& name, uint16_t port);

/// A framed PORT_PLEASE2_REQ for `name`.
std::string portPlease2Request(const std::string& name);

/// A framed NAMES_REQ.
std::string namesRequest();

// ---- Replies.

/// ALIVE2_X_RESP ('v', 32-bit creation) or ALIVE2_RESP ('y', 16-bit creation).
struct Alive2Reply {
  bool extended = false;  // 'v'
  uint8_t result = 0;     // 0 = registered
  uint32_t creation = 0;
};
/// The reply at the start of `bytes`; nullopt while it is incomplete or not an ALIVE2 reply.
std::optional<Alive2Reply> parseAlive2Reply(std::string_view bytes);

/// PORT2_RESP ('w'): a result, and the node's entry when the result is 0.
struct Port2Reply {
  uint8_t result = 0;  // 0 = found
  uint16_t port = 0;
  uint8_t type = 0;
  uint8_t protocol = 0;
  uint16_t high = 0;
  uint16_t low = 0;
  std::string name;
  std::string extra;
};
/// The reply at the start of `bytes`; nullopt while it is incomplete or not a PORT2_RESP.
std::optional<Port2Reply> parsePort2Reply(std::string_view bytes);

/// NAMES_RESP: the epmd port (4 bytes), then "name N at port P\n" lines.
struct NamesReply {
  uint32_t epmd_port = 0;
  std::string text;
};
/// The whole reply (the server closes after it); nullopt when shorter than its header.
std::optional<NamesReply> parseNamesReply(std::string_view bytes);

// ---- Sockets (blocking, loopback, bounded).

/// A port that was free a moment ago on every address, below the kernel's ephemeral range.
uint16_t freePort();

/// Connects to host:port (an IPv4 or IPv6 literal), TCP_NODELAY on. Returns -1 on failure.
int connectTo(const std::string& host, uint16_t port);

/// Connects to 127.0.0.1:port from 127.0.0.(2 + source % 253): load loops spread their
/// client addresses so that many short connections never run out of 4-tuples.
int connectLoopbackFrom(uint16_t port, unsigned source);

/// Retries connecting until it succeeds or `timeout` passes (a daemon starting up).
bool waitForPort(uint16_t port, std::chrono::milliseconds timeout,
                 const std::string& host = "127.0.0.1");

/// Sends every byte (MSG_NOSIGNAL); false when the peer is gone.
bool sendAll(int fd, const std::string& bytes);

/// What a server did with a connection: the bytes it sent, and whether it closed.
struct Outcome {
  std::string bytes;
  bool closed = false;  // EOF or reset seen before the deadline.
  bool reset = false;   // The close was a reset.
};

/// Reads until the peer closes or `timeout` passes.
Outcome readUntilClose(int fd, std::chrono::milliseconds timeout);

/// Reads exactly n bytes, or less on close or timeout.
std::string readN(int fd, size_t n, std::chrono::milliseconds timeout);

/// Sets SO_LINGER 0 so that close() sends a reset.
void setLingerZero(int fd);

}  // namespace epmdx::wire
