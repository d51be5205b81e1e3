#include "server/epmd/listener.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "server/common/log.h"
#include "server/epmd/peer.h"

namespace epmdx::epmd {
namespace {

constexpr size_t kMaxListenSockets = 16;  // OTP's MAX_LISTEN_SOCKETS.

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
                   ListenerOptions options, std::function<void()> on_kill)
    : io_(io),
      options_(std::move(options)),
      context_{registry, metrics, options_, options_.port, std::move(on_kill), {}},
      sweep_(io) {}

Listener::~Listener() {
  // Sessions still pending unlink themselves when the io_context destroys them; make sure
  // none points into a list that is gone.
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
    doSweep();
  });
}

void Listener::stop() {
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
    if (ec == asio::error::operation_aborted || !a.acceptor.is_open()) {
      return;
    }
    if (ec) {
      ++context_.metrics.accept_errors;
      log::warn("accept failed", {{"error", ec.message()}});
      a.retry.expires_after(std::chrono::milliseconds(100));
      a.retry.async_wait([this, &a](const boost::system::error_code& wec) {
        if (!wec) {
          doAccept(a);
        }
      });
      return;
    }
    acceptBatch(a);
  });
}

void Listener::acceptBatch(Acceptor& a) {
  // Drain what is pending (bounded, so one busy address cannot starve the others), as
  // OTP's loop does. accept4() hands back non-blocking sockets: no extra system call.
  for (int i = 0; i < 64; ++i) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    const int fd = ::accept4(a.acceptor.native_handle(), reinterpret_cast<sockaddr*>(&ss), &len,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) {
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        break;
      }
      // Out of descriptors (EMFILE/ENFILE) or another failure: never exit, as OTP would;
      // back off briefly so a full table does not spin the loop.
      ++context_.metrics.accept_errors;
      log::warn("accept failed", {{"error", std::strerror(errno)}});
      a.retry.expires_after(std::chrono::milliseconds(100));
      a.retry.async_wait([this, &a](const boost::system::error_code& wec) {
        if (!wec) {
          doAccept(a);
        }
      });
      return;
    }
    ++context_.metrics.connections_accepted;
    tcp::endpoint peer;
    std::memcpy(peer.data(), &ss, std::min<size_t>(len, sizeof(sockaddr_storage)));
    onAccepted(fd, peer);
    if (options_.delay_accept.count() > 0) {
      // OTP's test aid: a pause after each accepted connection.
      a.retry.expires_after(options_.delay_accept);
      a.retry.async_wait([this, &a](const boost::system::error_code& wec) {
        if (!wec) {
          doAccept(a);
        }
      });
      return;
    }
  }
  doAccept(a);
}

void Listener::onAccepted(int fd, const tcp::endpoint& peer) {
  // Fast path for the request that dominates real traffic, a lookup whose bytes are
  // already here: read, answer and close with plain system calls, never registering the
  // socket with epoll. Everything else (no data yet, a partial or other request, a
  // refusal) goes to a Session, which gets the bytes read so far.
  scratch_.reset();
  uint8_t buf[kInBufSize];
  ssize_t n;
  do {
    n = ::recv(fd, buf, scratch_.readSize(), 0);
  } while (n < 0 && errno == EINTR);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
    ::close(fd);  // Closed (or reset) before sending a whole packet.
    return;
  }
  FrameAssembler::Status status = FrameAssembler::Status::NeedMore;
  if (n > 0) {
    status = scratch_.append(buf, static_cast<size_t>(n));
    if (status == FrameAssembler::Status::Complete && scratch_.body()[0] == kPort2Req &&
        options_.delay_write.count() == 0) {
      auto decoded = decodeRequest(scratch_.body(), scratch_.bodySize(), Access{});
      if (decoded) {
        const std::string reply = answerPort2(context_, std::get<Port2Request>(decoded.value()));
        ssize_t sent;
        do {
          sent = ::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
        } while (sent < 0 && errno == EINTR);
        if (sent < 0 || static_cast<size_t>(sent) == reply.size()) {
          ::close(fd);
          return;
        }
        if (auto session = adopt(fd, peer, nullptr)) {
          session->startWithReply(reply.substr(static_cast<size_t>(sent)));
        }
        return;
      }
    }
  }
  auto frame = std::make_unique<FrameAssembler>();
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
