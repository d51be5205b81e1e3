#include "server/epmd/listener.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "server/common/endpoint_text.h"
#include "server/common/log.h"
#include "server/common/syscall.h"
#include "server/epmd/request.h"

namespace epmdx::epmd {
namespace {

constexpr size_t kMaxListenSockets = 16;  // OTP's MAX_LISTEN_SOCKETS.

// Above the descriptor high-water mark, idle connections are shed until the table is this
// many below it, so that it stays there for a while instead of shedding on every accept.
constexpr size_t kShedBatch = 8;
// Before the table is actually full, only connections idle this long are shed: a client
// that has just connected gets the time to send its request.
constexpr std::chrono::seconds kShedMinIdle{1};
// Retry after an accept error that shedding could not cure.
constexpr std::chrono::milliseconds kAcceptBackOff{100};
// At most one line about shedding and accept errors per interval, with the counts since
// the last line: "accept failed" every 100 ms would drown the log.
constexpr std::chrono::seconds kPressureLogInterval{10};

std::vector<std::string> splitAddresses(const std::string& list) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : list) {
    if (c == ',' || c == ' ') {
      if (!cur.empty()) {
        out.push_back(cur);
      }
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) {
    out.push_back(cur);
  }
  return out;
}

}  // namespace

struct Listener::Acceptor {
  explicit Acceptor(asio::io_context& io) : acceptor(io), retry(io) {}
  tcp::acceptor acceptor;
  asio::steady_timer retry;  // Back-off when out of descriptors, and delay_accept.
};

Listener::Listener(asio::io_context& io, registry::ClusterView registry, Metrics& metrics,
                   ListenerOptions options, std::function<void(const std::string&)> on_kill)
    : io_(io),
      options_(std::move(options)),
      context_{registry, metrics, options_, options_.port, std::move(on_kill), {}, {},
               {},       {},      0,        &held_},
      held_(io),
      sweep_(io),
      guard_(options_.descriptor_limit) {}

Listener::~Listener() {
  // Sessions still pending unlink themselves when the io_context destroys them; make sure
  // none points into a list that is gone.
  context_.silent.clear();
  context_.pending.clear();
}

Listener::BindResult Listener::bindOne(const asio::ip::address& address, bool fatal) {
  auto a = std::make_unique<Acceptor>(io_);
  boost::system::error_code ec;
  const tcp::endpoint ep(address, context_.epmd_port);
  a->acceptor.open(ep.protocol(), ec);
  if (ec) {
    if (ec == asio::error::address_family_not_supported || ec == asio::error::no_protocol_option ||
        !fatal) {
      return {BindStatus::Ok, {}};  // OTP skips families the host lacks.
    }
    return {BindStatus::Failed, "cannot open socket: " + ec.message()};
  }
  a->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (address.is_v6()) {
    a->acceptor.set_option(asio::ip::v6_only(true), ec);
  }
  a->acceptor.bind(ep, ec);
  if (ec) {
    const std::string where = formatEndpoint(ep);
    if (ec == asio::error::address_in_use && fatal) {
      return {BindStatus::AddressInUse,
              "there is already a epmd running at port " + std::to_string(ep.port())};
    }
    if (!fatal) {
      log::debug("skipping loopback address", {{"address", where}, {"error", ec.message()}});
      return {BindStatus::Ok, {}};
    }
    if (address.is_v6() && address.to_v6().is_unspecified() && ec.value() == EADDRNOTAVAIL) {
      return {BindStatus::Ok, {}};  // No IPv6 on this host.
    }
    return {BindStatus::Failed, "failed to bind on " + where + ": " + ec.message()};
  }
  a->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (!ec) {
    a->acceptor.native_non_blocking(true, ec);  // accept4() in acceptBatch must not block.
  }
  if (ec) {
    return {BindStatus::Failed, "failed to listen on " + formatEndpoint(ep) + ": " + ec.message()};
  }
  if (context_.epmd_port == 0) {
    context_.epmd_port = a->acceptor.local_endpoint().port();  // Tests: same port for all.
  }
  acceptors_.push_back(std::move(a));
  return {BindStatus::Ok, {}};
}

Listener::BindResult Listener::bind() {
  if (!options_.inherited_fds.empty()) {
    if (options_.inherited_fds.size() > kMaxListenSockets) {
      return {BindStatus::Failed, "cannot listen on more than 16 IP addresses"};
    }
    for (int fd : options_.inherited_fds) {
      auto a = std::make_unique<Acceptor>(io_);
      sockaddr_storage ss{};
      socklen_t len = sizeof ss;
      if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
        return {BindStatus::Failed, "systemd socket " + std::to_string(fd) + " is not a socket"};
      }
      boost::system::error_code ec;
      a->acceptor.assign(ss.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd, ec);
      if (ec) {
        return {BindStatus::Failed, "cannot adopt systemd socket: " + ec.message()};
      }
      context_.epmd_port = a->acceptor.local_endpoint(ec).port();
      a->acceptor.native_non_blocking(true, ec);
      acceptors_.push_back(std::move(a));
    }
    return {BindStatus::Ok, {}};
  }

  const auto tokens = splitAddresses(options_.addresses);
  if (tokens.empty()) {
    // Default: every IPv4 and IPv6 address (IPv6 socket is V6ONLY, as OTP's).
    for (const auto& any : {asio::ip::address(asio::ip::address_v4::any()),
                            asio::ip::address(asio::ip::address_v6::any())}) {
      if (auto r = bindOne(any, true); r.status != BindStatus::Ok) {
        return r;
      }
    }
  } else {
    std::vector<asio::ip::address> listed;
    for (const auto& t : tokens) {
      boost::system::error_code ec;
      auto addr = asio::ip::make_address(t, ec);
      if (ec) {
        return {BindStatus::Failed, "cannot parse IP address \"" + t + "\""};
      }
      if (!addr.is_loopback()) {
        listed.push_back(addr);
      }
    }
    if (listed.size() + 2 > kMaxListenSockets) {
      return {BindStatus::Failed, "cannot listen on more than 16 IP addresses"};
    }
    // Loopback first and non-fatal, so local nodes can always register.
    for (const auto& lo : {asio::ip::address(asio::ip::address_v4::loopback()),
                           asio::ip::address(asio::ip::address_v6::loopback())}) {
      if (auto r = bindOne(lo, false); r.status != BindStatus::Ok) {
        return r;
      }
    }
    for (const auto& addr : listed) {
      if (auto r = bindOne(addr, true); r.status != BindStatus::Ok) {
        return r;
      }
    }
  }
  if (acceptors_.empty()) {
    return {BindStatus::Failed, "unable to bind any address"};
  }
  return {BindStatus::Ok, {}};
}

void Listener::start() {
  base_descriptors_ = static_cast<size_t>(guard_.lowestFree());
  for (auto& a : acceptors_) {
    doAccept(*a);
  }
  doSweep();
}

void Listener::doSweep() {
  // Like OTP's select() timeout: per-connection deadlines checked once a second, which
  // costs nothing per lookup (a timer per connection would cost system calls).
  sweep_.expires_after(std::chrono::seconds(1));
  sweep_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) {
      return;
    }
    const auto now = std::chrono::steady_clock::now();
    std::vector<std::shared_ptr<Session>> pending;
    for (Session& s : context_.pending) {
      pending.push_back(s.shared_from_this());
    }
    for (auto& s : pending) {
      s->closeIfIdle(now);
    }
    // After a burst the table can stay full with no accept to notice it: look once a
    // second (while anything is pending at all) and give the headroom back.
    if (!context_.pending.empty()) {
      if (const size_t over = guard_.excess(inUse(guard_.lowestFree())); over > 0) {
        shedIdle(over + kShedBatch, kShedMinIdle);
      }
    }
    reportPressure(now);
    doSweep();
  });
}

void Listener::stop() {
  stopped_ = true;
  for (auto& a : acceptors_) {
    boost::system::error_code ignored;
    a->retry.cancel();
    a->acceptor.close(ignored);
  }
  sweep_.cancel();
}

std::vector<std::string> Listener::endpoints() const {
  std::vector<std::string> out;
  for (const auto& a : acceptors_) {
    boost::system::error_code ec;
    auto ep = a->acceptor.local_endpoint(ec);
    if (!ec) {
      out.push_back(formatEndpoint(ep));
    }
  }
  return out;
}

void Listener::doAccept(Acceptor& a) {
  a.acceptor.async_wait(tcp::acceptor::wait_read, [this, &a](const boost::system::error_code& ec) {
    if (ec == asio::error::operation_aborted || stopped_ || !a.acceptor.is_open()) {
      return;
    }
    if (ec) {
      ++context_.metrics.accept_errors;
      last_accept_error_ = ec.value();
      reportPressure(std::chrono::steady_clock::now());
      acceptLater(a, kAcceptBackOff);
      return;
    }
    acceptBatch(a);
  });
}

void Listener::acceptLater(Acceptor& a, std::chrono::steady_clock::duration delay) {
  a.retry.expires_after(delay);
  a.retry.async_wait([this, &a](const boost::system::error_code& ec) {
    if (!ec && !stopped_) {
      doAccept(a);
    }
  });
}

size_t Listener::inUse(int lowest_free) const {
  const auto open = context_.metrics.connections_open.load(std::memory_order_relaxed);
  return std::max(static_cast<size_t>(std::max(lowest_free, 0)),
                  base_descriptors_ + static_cast<size_t>(std::max<int64_t>(open, 0)));
}

size_t Listener::shedIdle(size_t max, std::chrono::steady_clock::duration min_idle) {
  const auto now = std::chrono::steady_clock::now();
  size_t n = 0;
  while (n < max) {
    // Both lists are in arrival order: the front is the oldest.
    Session* s = !context_.silent.empty()    ? &context_.silent.front()
                 : !context_.pending.empty() ? &context_.pending.front()
                                             : nullptr;
    if (s == nullptr || now - s->lastActivity() < min_idle) {
      break;
    }
    const auto keep = s->shared_from_this();
    s->shed();
    ++n;
  }
  return n;
}

Listener::Room Listener::makeRoom(Acceptor& a) {
  // Linux reports EMFILE before it looks at the backlog, so first find out whether anyone
  // is waiting at all: the reserve descriptor makes room for exactly one accept().
  if (!guard_.releaseReserve()) {
    return guard_.takeReserve() ? Room::Made : Room::None;  // Lost to another thread before.
  }
  sockaddr_storage ss{};
  socklen_t len = 0;
  const int fd = sys::acceptOne(a.acceptor.native_handle(), ss, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    guard_.takeReserve();
    return err == EAGAIN || err == EWOULDBLOCK ? Room::NobodyWaiting : Room::None;
  }
  // Someone is waiting, and holds the reserve's slot now. Shed idle connections (oldest
  // first, however young: the table is full) to take the reserve back and serve this one.
  // With nothing to shed (every descriptor holds a registration or a request being
  // answered), close it: its client hears a close at once instead of timing out, and the
  // listening socket stops being readable, so the loop neither spins nor stalls.
  if (shedIdle(kShedBatch, std::chrono::steady_clock::duration::zero()) > 0) {
    guard_.takeReserve();
    ++context_.metrics.connections_accepted;
    tcp::endpoint peer;
    std::memcpy(peer.data(), &ss, std::min<size_t>(len, sizeof(sockaddr_storage)));
    onAccepted(fd, peer);
    return Room::Made;
  }
  ::close(fd);
  ++context_.metrics.shed_at_accept;
  guard_.takeReserve();
  return Room::Made;
}

void Listener::reportPressure(std::chrono::steady_clock::time_point now) {
  const Metrics& m = context_.metrics;
  Reported cur{m.shed_silent.load(), m.shed_partial.load(), m.shed_at_accept.load(),
               m.accept_errors.load(), now};
  if (cur.shed_silent == reported_.shed_silent && cur.shed_partial == reported_.shed_partial &&
      cur.shed_at_accept == reported_.shed_at_accept &&
      cur.accept_errors == reported_.accept_errors) {
    return;
  }
  if (reported_.at && now - *reported_.at < kPressureLogInterval) {
    return;  // The next line (or the sweep) reports these too.
  }
  // Say what happened: shedding is about descriptors; accept errors alone may be anything.
  const bool descriptors = cur.shed_silent != reported_.shed_silent ||
                           cur.shed_partial != reported_.shed_partial ||
                           cur.shed_at_accept != reported_.shed_at_accept ||
                           last_accept_error_ == EMFILE || last_accept_error_ == ENFILE;
  log::warn(descriptors ? "epmd port short of descriptors: shedding idle connections"
                        : "epmd port: accepting connections failed",
            {{"port", context_.epmd_port},
             {"shed_silent", cur.shed_silent - reported_.shed_silent},
             {"shed_partial", cur.shed_partial - reported_.shed_partial},
             {"closed_at_accept", cur.shed_at_accept - reported_.shed_at_accept},
             {"accept_errors", cur.accept_errors - reported_.accept_errors},
             {"last_error", last_accept_error_ != 0 ? std::strerror(last_accept_error_) : "none"},
             {"open", m.connections_open.load()},
             {"limit", guard_.limit()}});
  reported_ = cur;
}

void Listener::acceptBatch(Acceptor& a) {
  // Drain what is pending (bounded, so one busy address cannot starve the others), as
  // OTP's loop does. accept4() hands back non-blocking sockets: no extra system call.
  for (int i = 0; i < 64; ++i) {
    sockaddr_storage ss{};
    socklen_t len = 0;
    const int fd =
        sys::acceptOne(a.acceptor.native_handle(), ss, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      if (err == ECONNABORTED) {
        continue;
      }
      if (err == EAGAIN || err == EWOULDBLOCK) {
        break;
      }
      // Out of descriptors (EMFILE/ENFILE) or another failure: never exit, as OTP would.
      last_accept_error_ = err;
      const Room room = err == EMFILE || err == ENFILE ? makeRoom(a) : Room::None;
      if (stopped_) {
        return;  // makeRoom() served a KILL_REQ.
      }
      if (room == Room::None) {
        ++context_.metrics.accept_errors;  // Only what could not be cured.
      }
      reportPressure(std::chrono::steady_clock::now());
      if (room == Room::Made) {
        continue;
      }
      if (room == Room::NobodyWaiting) {
        break;  // The table is full but the backlog empty: wait for the next client.
      }
      acceptLater(a, kAcceptBackOff);  // Not cured: back off rather than spin.
      return;
    }
    ++context_.metrics.connections_accepted;
    tcp::endpoint peer;
    std::memcpy(peer.data(), &ss, std::min<size_t>(len, sizeof(sockaddr_storage)));
    onAccepted(fd, peer);
    if (stopped_) {
      return;  // That connection was a KILL_REQ, answered at once: the acceptor is closed.
    }
    if (const size_t over = guard_.excess(inUse(fd + 1)); over > 0) {
      // The table is nearly full: make room before it is, so that the next registration
      // or lookup finds a descriptor, and the admin servers keep theirs.
      if (shedIdle(over + kShedBatch, kShedMinIdle) > 0) {
        reportPressure(std::chrono::steady_clock::now());
      }
    }
    if (options_.delay_accept.count() > 0) {
      // OTP's test aid: a pause after each accepted connection.
      acceptLater(a, options_.delay_accept);
      return;
    }
  }
  doAccept(a);
}

void Listener::onAccepted(int fd, const tcp::endpoint& peer) {
  // Fast path for the request that dominates real traffic, a lookup whose bytes are
  // already here: read, answer and close with plain system calls, never registering the
  // socket with epoll. Everything else (no data yet, a partial or other request) goes to a
  // Session, which gets the bytes read so far.
  scratch_.reset();
  uint8_t buf[kInBufSize];
  const ssize_t n = sys::recvSome(fd, buf, scratch_.readSize(), 0);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
    ::close(fd);  // Closed (or reset) before sending a whole packet.
    return;
  }
  if (n > 0 && answerAtOnce(fd, peer, buf, static_cast<size_t>(n))) {
    return;
  }
  auto frame = std::make_unique<FrameAssembler>();
  FrameAssembler::Status status = FrameAssembler::Status::NeedMore;
  if (n > 0) {
    status = frame->append(buf, static_cast<size_t>(n));
  }
  auto session = adopt(fd, peer, std::move(frame));
  if (!session) {
    return;
  }
  if (n > 0) {
    session->startWith(status);
  } else {
    session->start();
  }
}

bool Listener::answerAtOnce(int fd, const tcp::endpoint& peer, const uint8_t* data, size_t n) {
  if (scratch_.append(data, n) != FrameAssembler::Status::Complete ||
      scratch_.body()[0] != kPort2Req || options_.delay_write.count() != 0) {
    return false;
  }
  const auto outcome =
      serveRequest(context_, scratch_, decideAccess(context_, peer, fd, true), peer);
  const auto* answer = std::get_if<Answer>(&outcome);
  if (answer == nullptr) {
    ::close(fd);  // Refused: closed without a reply.
    return true;
  }
  const std::string& reply = answer->bytes;
  const ssize_t sent = sys::sendSome(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
  if (sent < 0 || static_cast<size_t>(sent) == reply.size()) {
    ::close(fd);
    return true;
  }
  if (auto session = adopt(fd, peer, nullptr)) {
    session->startWithReply(reply.substr(static_cast<size_t>(sent)));
  }
  return true;
}

std::shared_ptr<Session> Listener::adopt(int fd, const tcp::endpoint& peer,
                                         std::unique_ptr<FrameAssembler> frame) {
  boost::system::error_code ec;
  Socket socket(io_.get_executor());
  socket.assign(peer.protocol(), fd, ec);
  if (ec) {
    ::close(fd);
    return nullptr;
  }
  return std::make_shared<Session>(std::move(socket), peer, context_, std::move(frame));
}

}  // namespace epmdx::epmd
