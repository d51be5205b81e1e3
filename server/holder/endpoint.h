#pragma once

// A TCP endpoint as the kernel's socket tables key it: 16 address bytes and a port. IPv4
// addresses are kept IPv4-mapped (::ffff:a.b.c.d), so that a connection made over an IPv4
// socket and the same connection seen through a dual-stack IPv6 socket compare equal.

#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace epmdx::holder {

struct Endpoint {
  std::array<uint8_t, 16> address{};  // IPv6 bytes; IPv4 as ::ffff:a.b.c.d.
  uint16_t port = 0;                  // Host byte order.

  /// "127.0.0.1:4369", "[::1]:4369", "[::ffff:127.0.0.1]:4369" (the registry's Origin
  /// format). nullopt when it is not an address literal with a port.
  static std::optional<Endpoint> parse(std::string_view text);
  static Endpoint fromIpv4(uint32_t network_order_address, uint16_t port);
  static Endpoint fromIpv6(const uint8_t (&bytes)[16], uint16_t port);
  /// From a socket address (getsockname/getpeername, AF_INET or AF_INET6).
  static std::optional<Endpoint> fromSockaddr(const sockaddr* address, socklen_t length);
  /// The local or peer endpoint of a connected socket (the daemon's session has its fd).
  static std::optional<Endpoint> localOf(int fd);
  static std::optional<Endpoint> peerOf(int fd);

  bool isIpv4() const;
  /// The canonical text: "127.0.0.1:4369" for IPv4 (mapped or not), "[::1]:4369" else.
  std::string toString() const;

  bool operator==(const Endpoint&) const = default;
};

/// One TCP connection as seen from one of its ends.
struct ConnectionKey {
  Endpoint local;
  Endpoint remote;
  bool operator==(const ConnectionKey&) const = default;
};

struct ConnectionKeyHash {
  size_t operator()(const ConnectionKey& key) const;
};

}  // namespace epmdx::holder
