// Request builders and reply parsers of the epmd protocol (erts/epmd/src/epmd_srv.c).

#include "tests/wire/wire.h"

namespace epmdx::wire {
namespace {

void put16(std::string& out, size_t v) {
  out += static_cast<char>((v >> 8) & 0xFF);
  out += static_cast<char>(v & 0xFF);
}

uint16_t get16(std::string_view b, size_t at) {
  return static_cast<uint16_t>((static_cast<uint8_t>(b[at]) << 8) |
                               static_cast<uint8_t>(b[at + 1]));
}

uint32_t get32(std::string_view b, size_t at) {
  return (static_cast<uint32_t>(get16(b, at)) << 16) | get16(b, at + 2);
}

uint8_t get8(std::string_view b, size_t at) {
  return static_cast<uint8_t>(b[at]);
}

constexpr uint8_t kAlive2Resp = 121;   // 'y'
constexpr uint8_t kAlive2XResp = 118;  // 'v'
constexpr uint8_t kPort2Resp = 119;    // 'w'

}  // namespace

std::string bytes(std::initializer_list<int> values) {
  std::string s;
  for (int v : values) {
    s += static_cast<char>(v);
  }
  return s;
}

std::string frame(const std::string& body) {
  std::string out;
  put16(out, body.size());
  return out + body;
}

std::string alive2Body(const std::string& name, uint16_t port, uint16_t high, uint16_t low,
                       const std::string& extra, uint8_t type) {
  std::string b;
  b += static_cast<char>(120);  // 'x'
  put16(b, port);
  b += static_cast<char>(type);
  b += '\0';  // Protocol: TCP/IPv4.
  put16(b, high);
  put16(b, low);
  put16(b, name.size());
  b += name;
  put16(b, extra.size());
  b += extra;
  return b;
}

std::string alive2Request(const std::string& name, uint16_t port) {
  return frame(alive2Body(name, port));
}

std::string portPlease2Request(const std::string& name) {
  return frame("z" + name);
}

std::string namesRequest() {
  return frame("n");
}

std::optional<Alive2Reply> parseAlive2Reply(std::string_view b) {
  if (b.size() >= 6 && get8(b, 0) == kAlive2XResp) {
    return Alive2Reply{true, get8(b, 1), get32(b, 2)};
  }
  if (b.size() >= 4 && get8(b, 0) == kAlive2Resp) {
    return Alive2Reply{false, get8(b, 1), get16(b, 2)};
  }
  return std::nullopt;
}

std::optional<Port2Reply> parsePort2Reply(std::string_view b) {
  if (b.size() < 2 || get8(b, 0) != kPort2Resp) {
    return std::nullopt;
  }
  Port2Reply r;
  r.result = get8(b, 1);
  if (r.result != 0) {
    return r;  // Not found: the result byte is the whole reply.
  }
  // port(2) type(1) protocol(1) high(2) low(2) name_len(2) name extra_len(2) extra
  if (b.size() < 12) {
    return std::nullopt;
  }
  r.port = get16(b, 2);
  r.type = get8(b, 4);
  r.protocol = get8(b, 5);
  r.high = get16(b, 6);
  r.low = get16(b, 8);
  const size_t name_len = get16(b, 10);
  if (b.size() < 12 + name_len + 2) {
    return std::nullopt;
  }
  r.name = std::string(b.substr(12, name_len));
  const size_t extra_at = 12 + name_len + 2;
  const size_t extra_len = get16(b, 12 + name_len);
  if (b.size() < extra_at + extra_len) {
    return std::nullopt;
  }
  r.extra = std::string(b.substr(extra_at, extra_len));
  return r;
}

std::optional<NamesReply> parseNamesReply(std::string_view b) {
  if (b.size() < 4) {
    return std::nullopt;
  }
  return NamesReply{get32(b, 0), std::string(b.substr(4))};
}

}  // namespace epmdx::wire
