#pragma once

// The one path of a complete epmd request, for the listener's fast path and the session
// alike: what the peer may ask (decided once per connection), the decoding, the counting
// and logging of a refusal, and PORT_PLEASE2's answer. Runs on the epmd io_context's thread.

#include <string>
#include <variant>

#include "server/common/asio.h"
#include "server/epmd/codec.h"
#include "server/epmd/session.h"

namespace epmdx::epmd {

/// What `remote` may ask this port: OTP decides it once per connection, at accept. The
/// local-peer check costs a getsockname() on `fd` when the peer is not loopback:
/// `lookup_only` skips it for a connection whose one request is known to be a lookup, which
/// any peer may send (the fast path), and the NAMES policy, which a lookup does not need.
Access decideAccess(const SessionContext& ctx, const tcp::endpoint& remote, int fd,
                    bool lookup_only);

/// Refused (counted, and logged): the connection closes without a reply, as OTP's does.
struct Refused {};
/// PORT_PLEASE2's reply, found or not (counted, and logged with -d): send it, then close.
struct Answer {
  std::string bytes;
};
/// What became of a request: a `Request` is one of the others, for the session to serve.
using Outcome = std::variant<Refused, Answer, Request>;

/// Decodes `frame`'s request (@pre complete) with `access` and serves what needs no
/// connection state. `remote` is formatted only for a log line that is written.
Outcome serveRequest(SessionContext& ctx, const FrameAssembler& frame, const Access& access,
                     const tcp::endpoint& remote);

}  // namespace epmdx::epmd
