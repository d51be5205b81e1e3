#pragma once

// The epmd wire protocol as pure functions: bytes in, a typed request or a precise error
// out; typed replies in, bytes out. No I/O, so every rule is unit-testable and fuzzable.
// The rules are OTP's, case by case (erts/epmd/src/epmd_srv.c: do_read, do_request).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include "server/common/result.h"
#include "server/registry/types.h"

namespace epmdx::epmd {

// Request and reply codes (erts/epmd/src/epmd.h).
inline constexpr uint8_t kAlive2Req = 120;    // 'x'
inline constexpr uint8_t kAlive2Resp = 121;   // 'y'
inline constexpr uint8_t kAlive2XResp = 118;  // 'v'
inline constexpr uint8_t kPort2Req = 122;     // 'z'
inline constexpr uint8_t kPort2Resp = 119;    // 'w'
inline constexpr uint8_t kNamesReq = 110;     // 'n'
inline constexpr uint8_t kDumpReq = 100;      // 'd'
inline constexpr uint8_t kKillReq = 107;      // 'k'
inline constexpr uint8_t kStopReq = 115;      // 's'

/// OTP's INBUF_SIZE: a packet (2-byte length + body) must be shorter than this.
inline constexpr size_t kInBufSize = 3060;
/// Largest accepted body length: want = len + 2 must be < kInBufSize.
inline constexpr size_t kMaxBody = kInBufSize - 3;
/// Creation sent in an ALIVE2 error reply.
inline constexpr uint32_t kErrorCreation = 99;

struct Alive2Request {
  registry::NodeInfo node;
};
struct Port2Request {
  std::string name;
};
struct NamesRequest {};
struct DumpRequest {};
struct KillRequest {};
struct StopRequest {
  std::string name;  // Up to the first NUL, as OTP's strcmp-based lookup sees it.
};
using Request =
    std::variant<Alive2Request, Port2Request, NamesRequest, DumpRequest, KillRequest, StopRequest>;

/// Every reason a request is refused without a reply (the connection is just closed).
enum class DecodeError {
  UnknownRequest,    // "got garbage": unknown first byte.
  NotLocal,          // ALIVE2/DUMP/KILL/STOP from a non-local peer.
  Alive2TooSmall,    // Body of 13 bytes or less.
  Alive2NameSize,    // Nlen runs past the body.
  Alive2ExtraSize,   // Elen runs past the body.
  NameContainsNul,   // ALIVE2 or PORT2 name with a NUL byte inside.
  Port2TooSmall,     // Empty name.
  Port2InvalidName,  // Not UTF-8, or not 1..254 characters (see decodeRequest).
  StopNotAllowed,    // STOP_REQ without relaxed command check.
  StopTooSmall,      // Empty STOP_REQ.
  PolicyRefused,     // NAMES/DUMP or PORT_PLEASE2 from a peer the cluster's policy excludes.
};
std::string_view toString(DecodeError e);

/// A request code's name for logs ("NAMES_REQ"; "unknown" for any other code).
std::string_view requestName(int code);

/// What the peer may do: OTP decides this once per connection at accept.
struct Access {
  bool local_peer = false;  // 127.0.0.0/8, ::1, or the host's own address.
  bool relaxed = false;     // -relaxed_command_check / ERL_EPMD_RELAXED_COMMAND_CHECK.
  // epmdx's access policy (--names-from, --lookups-from); OTP allows both to anyone.
  bool may_list = true;     // NAMES_REQ, DUMP_REQ.
  bool may_resolve = true;  // PORT_PLEASE2_REQ.
};

/// Decodes one complete request body (the bytes after the 2-byte length).
/// @pre size >= 1 (FrameAssembler guarantees it).
Result<Request, DecodeError> decodeRequest(const uint8_t* body, size_t size, Access access);

/// Reassembles one length-prefixed packet from partial reads, with OTP's read sizes:
/// before the length is known a read may take up to kInBufSize - 1 bytes, so bytes sent
/// past the packet in the same read are caught; afterwards only what is missing.
/// Storage grows to the packet's size only (most packets are a few dozen bytes).
class FrameAssembler {
 public:
  enum class Status {
    NeedMore,     // Keep reading.
    Complete,     // body() is the request.
    InvalidSize,  // Length 0 or >= 3058: close without reply.
    Overrun,      // More bytes than the length said arrived in one read: close.
  };

  /// At most how many bytes the next read may take.
  size_t readSize() const { return (want_ != 0 ? want_ : kInBufSize - 1) - buf_.size(); }

  /// Accounts for `n` bytes that one read returned. @pre n <= readSize().
  Status append(const uint8_t* data, size_t n);

  const uint8_t* body() const { return reinterpret_cast<const uint8_t*>(buf_.data()) + 2; }
  size_t bodySize() const { return want_ - 2; }
  size_t received() const { return buf_.size(); }
  const std::string& bytes() const { return buf_; }

  /// Forgets everything received (the storage is kept for reuse).
  void reset() {
    buf_.clear();
    want_ = 0;
  }

 private:
  std::string buf_;
  size_t want_ = 0;  // 0 until the 2 length bytes arrived; then length + 2.
};

// ---- Replies (byte-identical to OTP's) ---------------------------------------------------

/// ALIVE2_X_RESP (6 bytes) when the request's highest version is >= 6, else ALIVE2_RESP
/// (4 bytes, creation truncated to 16 bits).
std::string encodeAlive2Reply(bool ok, uint32_t creation, uint16_t request_highest_version);
std::string encodePort2Found(const registry::Registration& r);
std::string encodePort2NotFound();
/// The 4-byte epmd port that starts NAMES and DUMP replies.
std::string encodePortHeader(uint16_t epmd_port);
std::string encodeNamesLine(std::string_view name, uint16_t port);
/// DUMP lines carry a trailing NUL, as OTP's do.
std::string encodeDumpActiveLine(std::string_view name, uint16_t port, int64_t fd);
std::string encodeDumpUnusedLine(std::string_view name, uint16_t port, int64_t fd);

inline constexpr std::string_view kKillOk = "OK";
inline constexpr std::string_view kKillNo = "NO";
inline constexpr std::string_view kStopped = "STOPPED";
inline constexpr std::string_view kNoExist = "NOEXIST";

}  // namespace epmdx::epmd
