#include "server/epmd/codec.h"

#include <cstring>

#include "server/common/utf8.h"

namespace epmdx::epmd {
namespace {

uint16_t get16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

void put16(std::string& out, uint32_t v) {
  out += static_cast<char>((v >> 8) & 0xFF);
  out += static_cast<char>(v & 0xFF);
}

void put32(std::string& out, uint32_t v) {
  put16(out, v >> 16);
  put16(out, v & 0xFFFF);
}

Result<Request, DecodeError> decodeAlive2(const uint8_t* buf, size_t bsize, Access access) {
  if (!access.local_peer) {
    return makeErr(DecodeError::NotLocal);
  }
  if (bsize <= 13) {
    return makeErr(DecodeError::Alive2TooSmall);
  }
  Alive2Request req;
  registry::NodeInfo& n = req.node;
  n.port = get16(buf + 1);
  n.node_type = buf[3];
  n.protocol = buf[4];
  n.highest_version = get16(buf + 5);
  n.lowest_version = get16(buf + 7);
  const size_t nlen = get16(buf + 9);
  if (nlen + 13 > bsize) {
    return makeErr(DecodeError::Alive2NameSize);
  }
  const size_t elen = get16(buf + 11 + nlen);
  if (elen + nlen + 13 > bsize) {
    return makeErr(DecodeError::Alive2ExtraSize);
  }
  if (std::memchr(buf + 11, 0, nlen) != nullptr) {
    return makeErr(DecodeError::NameContainsNul);
  }
  // Bytes after Extra are ignored: OTP's size checks are lower bounds only.
  n.name.assign(reinterpret_cast<const char*>(buf + 11), nlen);
  n.extra.assign(reinterpret_cast<const char*>(buf + 13 + nlen), elen);
  return Request{std::move(req)};
}

Result<Request, DecodeError> decodePort2(const uint8_t* buf, size_t bsize) {
  if (buf[bsize - 1] == 0) {
    --bsize;  // Clients from R3A on may send one trailing NUL.
  }
  if (bsize <= 1) {
    return makeErr(DecodeError::Port2TooSmall);
  }
  if (std::memchr(buf + 1, 0, bsize - 1) != nullptr) {
    return makeErr(DecodeError::NameContainsNul);
  }
  // OTP checks `verify_utf8(name, bsize)`: bsize counts the request byte, so the check
  // runs one byte past the name, over the NUL terminator, which counts as a character.
  // A name must therefore be valid UTF-8 of at most 254 characters to be looked up.
  const int chars = countUtf8Chars(buf + 1, bsize - 1);
  if (chars < 0 || chars + 1 > registry::kMaxNameChars) {
    return makeErr(DecodeError::Port2InvalidName);
  }
  return Request{Port2Request{std::string(reinterpret_cast<const char*>(buf + 1), bsize - 1)}};
}

Result<Request, DecodeError> decodeStop(const uint8_t* buf, size_t bsize, Access access) {
  if (!access.local_peer) {
    return makeErr(DecodeError::NotLocal);
  }
  if (!access.relaxed) {
    return makeErr(DecodeError::StopNotAllowed);
  }
  if (bsize <= 1) {
    return makeErr(DecodeError::StopTooSmall);
  }
  const char* name = reinterpret_cast<const char*>(buf + 1);
  return Request{StopRequest{std::string(name, strnlen(name, bsize - 1))}};
}

}  // namespace

std::string_view requestName(int code) {
  switch (code) {
    case kAlive2Req:
      return "ALIVE2_REQ";
    case kPort2Req:
      return "PORT_PLEASE2_REQ";
    case kNamesReq:
      return "NAMES_REQ";
    case kDumpReq:
      return "DUMP_REQ";
    case kKillReq:
      return "KILL_REQ";
    case kStopReq:
      return "STOP_REQ";
    default:
      return "unknown";
  }
}

std::string_view toString(DecodeError e) {
  switch (e) {
    case DecodeError::UnknownRequest:
      return "unknown request";
    case DecodeError::NotLocal:
      return "request from non-local address";
    case DecodeError::Alive2TooSmall:
      return "ALIVE2_REQ too small";
    case DecodeError::Alive2NameSize:
      return "ALIVE2_REQ node name size error";
    case DecodeError::Alive2ExtraSize:
      return "ALIVE2_REQ extra size error";
    case DecodeError::NameContainsNul:
      return "node name contains NUL";
    case DecodeError::Port2TooSmall:
      return "PORT2_REQ too small";
    case DecodeError::Port2InvalidName:
      return "PORT2_REQ invalid node name";
    case DecodeError::StopNotAllowed:
      return "STOP_REQ without relaxed command check";
    case DecodeError::StopTooSmall:
      return "STOP_REQ too small";
    case DecodeError::PolicyRefused:
      return "refused by the cluster's access policy";
  }
  return "unknown";
}

Result<Request, DecodeError> decodeRequest(const uint8_t* body, size_t size, Access access) {
  switch (body[0]) {
    case kAlive2Req:
      return decodeAlive2(body, size, access);
    case kPort2Req:
      if (!access.may_resolve) {
        return makeErr(DecodeError::PolicyRefused);
      }
      return decodePort2(body, size);
    case kNamesReq:
      if (!access.may_list) {
        return makeErr(DecodeError::PolicyRefused);
      }
      return Request{NamesRequest{}};
    case kDumpReq:
      if (!access.local_peer) {
        return makeErr(DecodeError::NotLocal);
      }
      if (!access.may_list) {
        return makeErr(DecodeError::PolicyRefused);
      }
      return Request{DumpRequest{}};
    case kKillReq:
      if (!access.local_peer) {
        return makeErr(DecodeError::NotLocal);
      }
      return Request{KillRequest{}};
    case kStopReq:
      return decodeStop(body, size, access);
    default:
      return makeErr(DecodeError::UnknownRequest);
  }
}

FrameAssembler::Status FrameAssembler::append(const uint8_t* data, size_t n) {
  buf_.append(reinterpret_cast<const char*>(data), n);
  if (want_ == 0 && buf_.size() >= 2) {
    want_ = get16(reinterpret_cast<const uint8_t*>(buf_.data())) + 2;
    if (want_ < 3 || want_ >= kInBufSize) {
      return Status::InvalidSize;
    }
    if (buf_.size() > want_) {
      return Status::Overrun;
    }
    buf_.reserve(want_);
  }
  return want_ != 0 && buf_.size() == want_ ? Status::Complete : Status::NeedMore;
}

std::string encodeAlive2Reply(bool ok, uint32_t creation, uint16_t request_highest_version) {
  std::string out;
  if (request_highest_version >= 6) {
    out += static_cast<char>(kAlive2XResp);
    out += static_cast<char>(ok ? 0 : 1);
    put32(out, creation);
  } else {
    out += static_cast<char>(kAlive2Resp);
    out += static_cast<char>(ok ? 0 : 1);
    put16(out, creation & 0xFFFF);
  }
  return out;
}

std::string encodePort2Found(const registry::Registration& r) {
  const registry::NodeInfo& n = r.node;
  std::string out;
  out.reserve(14 + n.name.size() + n.extra.size());
  out += static_cast<char>(kPort2Resp);
  out += '\0';
  put16(out, n.port);
  out += static_cast<char>(n.node_type);
  out += static_cast<char>(n.protocol);
  put16(out, n.highest_version);
  put16(out, n.lowest_version);
  put16(out, static_cast<uint32_t>(n.name.size()));
  out += n.name;
  put16(out, static_cast<uint32_t>(n.extra.size()));
  out += n.extra;
  return out;
}

std::string encodePort2NotFound() {
  return std::string{static_cast<char>(kPort2Resp), '\1'};
}

std::string encodePortHeader(uint16_t epmd_port) {
  std::string out;
  put32(out, epmd_port);
  return out;
}

std::string encodeNamesLine(std::string_view name, uint16_t port) {
  std::string out = "name ";
  out += name;
  out += " at port ";
  out += std::to_string(port);
  out += '\n';
  return out;
}

std::string encodeDumpActiveLine(std::string_view name, uint16_t port, int64_t fd) {
  std::string out = "active name     <";
  out += name;
  out += "> at port " + std::to_string(port) + ", fd = " + std::to_string(fd) + "\n";
  out += '\0';
  return out;
}

std::string encodeDumpUnusedLine(std::string_view name, uint16_t port, int64_t fd) {
  std::string out = "old/unused name <";
  out += name;
  out += ">, port = " + std::to_string(port) + ", fd = " + std::to_string(fd) + " \n";
  out += '\0';
  return out;
}

}  // namespace epmdx::epmd
