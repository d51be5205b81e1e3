#include "server/holder/endpoint.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace epmdx::holder {
namespace {

constexpr std::array<uint8_t, 12> kMappedPrefix{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

std::optional<uint16_t> parsePort(std::string_view text) {
  if (text.empty() || text.size() > 5) {
    return std::nullopt;
  }
  uint32_t port = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    port = port * 10 + static_cast<uint32_t>(c - '0');
  }
  if (port > 65535) {
    return std::nullopt;
  }
  return static_cast<uint16_t>(port);
}

// FNV-1a: the keys are few and short; any decent mix will do.
void mix(size_t& h, const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    h = (h ^ p[i]) * 1099511628211ULL;
  }
}

}  // namespace

std::optional<Endpoint> Endpoint::parse(std::string_view text) {
  std::string host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return std::nullopt;
    }
    host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
  }
  const auto port = parsePort(port_text);
  if (!port) {
    return std::nullopt;
  }
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    return fromIpv4(v4.s_addr, *port);
  }
  uint8_t v6[16];
  if (inet_pton(AF_INET6, host.c_str(), v6) == 1) {
    return fromIpv6(v6, *port);
  }
  return std::nullopt;
}

Endpoint Endpoint::fromIpv4(uint32_t network_order_address, uint16_t port) {
  Endpoint e;
  std::memcpy(e.address.data(), kMappedPrefix.data(), kMappedPrefix.size());
  std::memcpy(e.address.data() + 12, &network_order_address, 4);
  e.port = port;
  return e;
}

Endpoint Endpoint::fromIpv6(const uint8_t (&bytes)[16], uint16_t port) {
  Endpoint e;
  std::memcpy(e.address.data(), bytes, 16);
  e.port = port;
  return e;
}

std::optional<Endpoint> Endpoint::fromSockaddr(const sockaddr* address, socklen_t length) {
  if (address->sa_family == AF_INET && length >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(address);
    return fromIpv4(a->sin_addr.s_addr, ntohs(a->sin_port));
  }
  if (address->sa_family == AF_INET6 && length >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(address);
    uint8_t bytes[16];
    std::memcpy(bytes, &a->sin6_addr, 16);
    return fromIpv6(bytes, ntohs(a->sin6_port));
  }
  return std::nullopt;
}

std::optional<Endpoint> Endpoint::localOf(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return std::nullopt;
  }
  return fromSockaddr(reinterpret_cast<const sockaddr*>(&ss), len);
}

std::optional<Endpoint> Endpoint::peerOf(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return std::nullopt;
  }
  return fromSockaddr(reinterpret_cast<const sockaddr*>(&ss), len);
}

bool Endpoint::isIpv4() const {
  return std::memcmp(address.data(), kMappedPrefix.data(), kMappedPrefix.size()) == 0;
}

std::string Endpoint::toString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (isIpv4()) {
    inet_ntop(AF_INET, address.data() + 12, buf, sizeof(buf));
    return std::string(buf) + ":" + std::to_string(port);
  }
  inet_ntop(AF_INET6, address.data(), buf, sizeof(buf));
  return "[" + std::string(buf) + "]:" + std::to_string(port);
}

size_t ConnectionKeyHash::operator()(const ConnectionKey& key) const {
  size_t h = 14695981039346656037ULL;
  mix(h, key.local.address.data(), 16);
  mix(h, reinterpret_cast<const uint8_t*>(&key.local.port), 2);
  mix(h, key.remote.address.data(), 16);
  mix(h, reinterpret_cast<const uint8_t*>(&key.remote.port), 2);
  return h;
}

}  // namespace epmdx::holder
