#include "server/epmd/listener.h"

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

Listener::Listener(asio::io_context& io, registry::Registry& registry, Metrics& metrics,
                   ListenerOptions options, std::function<void()> on_kill)
    : io_(io),
      options_(std::move(options)),
      context_{registry, metrics, options_, options_.port, std::move(on_kill)} {}

Listener::~Listener() = default;

Listener::BindResult Listener::bindOne(const asio::ip::address& address, bool fatal) {
  auto a = std::make_unique<Acceptor>(io_);
  boost::system::error_code ec;
  const tcp::endpoint ep(address, context_.epmd_port);
  a->acceptor.open(ep.protocol(), ec);
  if (ec) {
    if (ec == asio::error::address_family_not_supported ||
        ec == asio::error::no_protocol_option || !fatal) {
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
    if (address.is_v6() && address.to_v6().is_unspecified() &&
        ec.value() == EADDRNOTAVAIL) {
      return {BindStatus::Ok, {}};  // No IPv6 on this host.
    }
    return {BindStatus::Failed, "failed to bind on " + where + ": " + ec.message()};
  }
  a->acceptor.listen(asio::socket_base::max_listen_connections, ec);
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
      acceptors_.push_back(std::move(a));
    }
    return {BindStatus::Ok, {}};
  }

  const auto tokens = splitAddresses(options_.addresses);
  if (tokens.empty()) {
    // Default: every IPv4 and IPv6 address (IPv6 socket is V6ONLY, as OTP's).
    for (const auto& any :
         {asio::ip::address(asio::ip::address_v4::any()),
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
}

void Listener::stop() {
  for (auto& a : acceptors_) {
    boost::system::error_code ignored;
    a->retry.cancel();
    a->acceptor.close(ignored);
  }
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
  a.acceptor.async_accept([this, &a](const boost::system::error_code& ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !a.acceptor.is_open()) {
      return;
    }
    if (ec) {
      ++context_.metrics.accept_errors;
      // Out of descriptors (EMFILE/ENFILE) or a transient error: never exit, as OTP would;
      // back off briefly so a full table does not spin the loop.
      log::warn("accept failed", {{"error", ec.message()}});
      a.retry.expires_after(std::chrono::milliseconds(100));
      a.retry.async_wait([this, &a](const boost::system::error_code& wec) {
        if (!wec) {
          doAccept(a);
        }
      });
      return;
    }
    ++context_.metrics.connections_accepted;
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    std::make_shared<Session>(std::move(socket), context_)->start();
    if (options_.delay_accept.count() > 0) {
      a.retry.expires_after(options_.delay_accept);
      a.retry.async_wait([this, &a](const boost::system::error_code& wec) {
        if (!wec) {
          doAccept(a);
        }
      });
      return;
    }
    doAccept(a);
  });
}

}  // namespace epmdx::epmd
