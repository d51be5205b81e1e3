// The epmd request decoder and reply encoders (server/epmd/codec.h) on arbitrary bodies.
// Input: byte 0 is the peer's access (bit 0: local, bit 1: relaxed command check, bit 2: the
// cluster's policy forbids listing names, bit 3: it forbids lookups), the rest is one
// request body as the frame assembler hands it over (1 to kMaxBody bytes).
//
// Invariants: an accepted request re-encodes to exactly the bytes it was decoded from; the
// lookup reply for an accepted registration carries those same bytes back; nothing decoded
// exceeds OTP's caps; access rules hold (non-local peers never register, dump, kill or stop;
// STOP needs relaxed; the access policy gates NAMES, DUMP and lookups only); more access
// never turns an accepted request into a refused one.

#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "server/common/utf8.h"
#include "server/epmd/codec.h"

namespace {

using namespace epmdx;
using namespace epmdx::epmd;

void put16(std::string& out, size_t v) {
  out += static_cast<char>((v >> 8) & 0xFF);
  out += static_cast<char>(v & 0xFF);
}

// ALIVE2_REQ's layout, written independently of the decoder.
std::string encodeAlive2Request(const registry::NodeInfo& n) {
  std::string out(1, static_cast<char>(kAlive2Req));
  put16(out, n.port);
  out += static_cast<char>(n.node_type);
  out += static_cast<char>(n.protocol);
  put16(out, n.highest_version);
  put16(out, n.lowest_version);
  put16(out, n.name.size());
  out += n.name;
  put16(out, n.extra.size());
  out += n.extra;
  return out;
}

void checkAlive2(const registry::NodeInfo& n, std::string_view body) {
  FUZZ_CHECK(n.name.find('\0') == std::string::npos);
  FUZZ_CHECK(n.name.size() + n.extra.size() + 13 <= body.size());
  FUZZ_CHECK(body.size() <= kMaxBody);
  // Bytes after the extra field are ignored (OTP's size checks are lower bounds).
  const std::string again = encodeAlive2Request(n);
  FUZZ_CHECK(body.substr(0, again.size()) == again);

  // PORT2_RESP for this node: 119, 0, then the request's fields in the request's layout.
  registry::Registration r;
  r.node = n;
  const std::string reply = encodePort2Found(r);
  FUZZ_CHECK(reply.size() == again.size() + 1);
  FUZZ_CHECK(static_cast<uint8_t>(reply[0]) == kPort2Resp && reply[1] == 0);
  FUZZ_CHECK(std::string_view(reply).substr(2) == std::string_view(again).substr(1));
  FUZZ_CHECK(reply.size() < kInBufSize);

  // ALIVE2 replies: 32-bit creation for version 6 and later, else 16 bits.
  const uint32_t creation = (static_cast<uint32_t>(n.port) << 16) | n.lowest_version;
  for (const bool ok : {true, false}) {
    const std::string a = encodeAlive2Reply(ok, creation, n.highest_version);
    if (n.highest_version >= 6) {
      FUZZ_CHECK(a.size() == 6 && static_cast<uint8_t>(a[0]) == kAlive2XResp);
      const uint32_t back = (static_cast<uint32_t>(static_cast<uint8_t>(a[2])) << 24) |
                            (static_cast<uint32_t>(static_cast<uint8_t>(a[3])) << 16) |
                            (static_cast<uint32_t>(static_cast<uint8_t>(a[4])) << 8) |
                            static_cast<uint8_t>(a[5]);
      FUZZ_CHECK(back == creation);
    } else {
      FUZZ_CHECK(a.size() == 4 && static_cast<uint8_t>(a[0]) == kAlive2Resp);
      const uint32_t back =
          (static_cast<uint32_t>(static_cast<uint8_t>(a[2])) << 8) | static_cast<uint8_t>(a[3]);
      FUZZ_CHECK(back == (creation & 0xFFFF));
    }
    FUZZ_CHECK(a[1] == (ok ? 0 : 1));
  }
  r.creation_counter = creation;
  const uint32_t told = r.creation();
  FUZZ_CHECK(n.highest_version >= 6 ? told == creation : told >= 1 && told <= 3);
}

void checkPort2(const std::string& name, std::string_view body) {
  // "z" + name, with at most one trailing NUL dropped.
  const bool nul = body.size() == name.size() + 2 && body.back() == '\0';
  FUZZ_CHECK(body.size() == name.size() + 1 || nul);
  FUZZ_CHECK(body.substr(1, name.size()) == name);
  FUZZ_CHECK(!name.empty() && name.find('\0') == std::string::npos);
  const int chars = countUtf8Chars(reinterpret_cast<const uint8_t*>(name.data()), name.size());
  FUZZ_CHECK(chars >= 1 && chars <= registry::kMaxNameChars - 1);  // OTP: at most 254.
  FUZZ_CHECK(name.size() <= registry::kMaxNameBytes);
  const std::string line = encodeNamesLine(name, 4369);
  FUZZ_CHECK(line == "name " + name + " at port 4369\n");
}

void checkStop(const std::string& name, std::string_view body) {
  FUZZ_CHECK(body.size() >= 2);
  FUZZ_CHECK(name.find('\0') == std::string::npos);
  FUZZ_CHECK(body.substr(1, name.size()) == name);
  FUZZ_CHECK(body.size() == name.size() + 1 || body[name.size() + 1] == '\0');
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2 || size - 1 > kMaxBody) {
    return 0;  // The frame assembler never hands over more (its own target proves that).
  }
  Access access;
  access.local_peer = (data[0] & 1) != 0;
  access.relaxed = (data[0] & 2) != 0;
  access.may_list = (data[0] & 4) == 0;
  access.may_resolve = (data[0] & 8) == 0;
  const uint8_t* body = data + 1;
  const size_t n = size - 1;
  const std::string_view view(reinterpret_cast<const char*>(body), n);

  const auto r = decodeRequest(body, n, access);
  const auto full = decodeRequest(body, n, Access{true, true, true, true});
  if (!r.ok()) {
    const DecodeError e = r.error();
    FUZZ_CHECK(!toString(e).empty());
    FUZZ_CHECK(e != DecodeError::NotLocal || !access.local_peer);
    FUZZ_CHECK(e != DecodeError::StopNotAllowed || !access.relaxed);
    if (e == DecodeError::PolicyRefused) {
      const bool listing = body[0] == kNamesReq || body[0] == kDumpReq;
      FUZZ_CHECK((listing && !access.may_list) || (body[0] == kPort2Req && !access.may_resolve));
    }
    const bool known = body[0] == kAlive2Req || body[0] == kPort2Req || body[0] == kNamesReq ||
                       body[0] == kDumpReq || body[0] == kKillReq || body[0] == kStopReq;
    FUZZ_CHECK((e == DecodeError::UnknownRequest) == !known);
    if (e != DecodeError::NotLocal && e != DecodeError::StopNotAllowed &&
        e != DecodeError::PolicyRefused) {
      FUZZ_CHECK(!full.ok() && full.error() == e);  // Not an access question.
    }
    return 0;
  }
  FUZZ_CHECK(full.ok() && full.value().index() == r.value().index());
  const Request& req = r.value();
  if (const auto* a = std::get_if<Alive2Request>(&req)) {
    FUZZ_CHECK(access.local_peer);
    checkAlive2(a->node, view);
  } else if (const auto* p = std::get_if<Port2Request>(&req)) {
    FUZZ_CHECK(access.may_resolve);
    checkPort2(p->name, view);
  } else if (std::holds_alternative<NamesRequest>(req)) {
    FUZZ_CHECK(access.may_list && body[0] == kNamesReq);  // Trailing bytes are ignored.
  } else if (std::holds_alternative<DumpRequest>(req)) {
    FUZZ_CHECK(access.local_peer && access.may_list && body[0] == kDumpReq);
  } else if (std::holds_alternative<KillRequest>(req)) {
    FUZZ_CHECK(access.local_peer && body[0] == kKillReq);
  } else if (const auto* s = std::get_if<StopRequest>(&req)) {
    FUZZ_CHECK(access.local_peer && access.relaxed);
    checkStop(s->name, view);
  }
  return 0;
}
