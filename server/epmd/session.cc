#include "server/epmd/session.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "server/common/endpoint_text.h"
#include "server/common/log.h"
#include "server/common/syscall.h"
#include "server/epmd/request.h"

namespace epmdx::epmd {

using boost::system::error_code;

Session::Session(Socket socket, const tcp::endpoint& remote, SessionContext& ctx,
                 std::unique_ptr<FrameAssembler> frame)
    : socket_(std::move(socket)),
      ctx_(ctx),
      metrics_(ctx.metrics),
      remote_(remote),
      access_(decideAccess(ctx, remote, socket_.native_handle(), false)),
      frame_(frame ? std::move(frame) : std::make_unique<FrameAssembler>()) {
  ++ctx_.metrics.connections_open;
  if (ctx_.options.delay_write.count() > 0) {
    delay_ = std::make_unique<std::remove_reference_t<decltype(*delay_)>>(socket_.get_executor());
  }
}

Session::~Session() {
  if (!closed_) {
    --metrics_.connections_open;
  }
}

void Session::start() {
  last_activity_ = std::chrono::steady_clock::now();
  ctx_.pending.push_back(*this);
  ctx_.silent.push_back(*this);  // The listener read nothing from it yet.
  doRead();
}

void Session::startWith(FrameAssembler::Status status) {
  last_activity_ = std::chrono::steady_clock::now();
  ctx_.pending.push_back(*this);
  onFrame(status);
}

void Session::startWithReply(std::string rest) {
  last_activity_ = std::chrono::steady_clock::now();
  ctx_.pending.push_back(*this);  // Until the rest is written (see onFrame).
  std::vector<std::string> parts;
  parts.push_back(std::move(rest));
  frame_.reset();
  replyAndClose(std::move(parts));
}

void Session::doRead() {
  socket_.async_wait(Socket::wait_read,
                     [self = shared_from_this()](const error_code& ec) { self->onReadable(ec); });
}

void Session::onReadable(const error_code& ec) {
  if (closed_) {
    return;
  }
  if (ec) {
    close();
    return;
  }
  // One read of at most readSize() bytes, as OTP's do_read, into a stack buffer; the frame
  // keeps only what arrived. MSG_DONTWAIT: never block the epmd thread on a spurious wake.
  uint8_t buf[kInBufSize];
  const ssize_t n = sys::recvSome(socket_.native_handle(), buf, frame_->readSize(), MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    doRead();
    return;
  }
  if (n <= 0) {
    log::debug(n == 0 ? "partial packet only" : "read error",
               {{"peer", peer()}, {"bytes", frame_->received()}});
    close();
    return;
  }
  last_activity_ = std::chrono::steady_clock::now();
  SilentHook::unlink();
  onFrame(frame_->append(buf, static_cast<size_t>(n)));
}

void Session::onFrame(FrameAssembler::Status status) {
  switch (status) {
    case FrameAssembler::Status::NeedMore:
      doRead();
      return;
    case FrameAssembler::Status::InvalidSize:
      ++ctx_.metrics.malformed;
      log::warn("refused packet", {{"peer", peer()}, {"reason", "invalid packet size"}});
      close();
      return;
    case FrameAssembler::Status::Overrun:
      ++ctx_.metrics.malformed;
      log::warn("refused packet", {{"peer", peer()}, {"reason", "more bytes than the length"}});
      close();
      return;
    case FrameAssembler::Status::Complete:
      break;
  }
  // Still subject to the packet timeout until its reply is written (and shed first under
  // pressure): a client that never reads its reply must not hold the connection forever.
  auto outcome = serveRequest(ctx_, *frame_, access_, remote_);
  frame_.reset();
  if (auto* request = std::get_if<Request>(&outcome)) {
    handle(std::move(*request));
  } else if (auto* answer = std::get_if<Answer>(&outcome)) {
    std::vector<std::string> parts;
    parts.push_back(std::move(answer->bytes));
    replyAndClose(std::move(parts));
  } else {
    close();  // Refused.
  }
}

void Session::logRequest(const Request& request) const {
  // With -d, one line per request, as OTP's epmd logs every request it gets when debugging.
  // Lookups log in answerPort2(), with their result.
  if (!log::enabled(log::Level::Debug)) {
    return;
  }
  const std::string peer = this->peer();
  std::visit(
      [&peer](const auto& req) {
        using T = std::decay_t<decltype(req)>;
        if constexpr (std::is_same_v<T, Alive2Request>) {
          log::debug("request", {{"request", requestName(kAlive2Req)},
                                 {"name", log::printable(req.node.name)},
                                 {"port", req.node.port},
                                 {"peer", peer}});
        } else if constexpr (std::is_same_v<T, StopRequest>) {
          log::debug("request", {{"request", requestName(kStopReq)},
                                 {"name", log::printable(req.name)},
                                 {"peer", peer}});
        } else if constexpr (std::is_same_v<T, Port2Request>) {
          // Lookups are answered (and logged) by serveRequest().
        } else {
          const int code = std::is_same_v<T, NamesRequest>  ? kNamesReq
                           : std::is_same_v<T, DumpRequest> ? kDumpReq
                                                            : kKillReq;
          log::debug("request", {{"request", requestName(code)}, {"peer", peer}});
        }
      },
      request);
}

void Session::handle(Request&& request) {
  logRequest(request);
  std::visit(
      [this](auto&& req) {
        using T = std::decay_t<decltype(req)>;
        if constexpr (std::is_same_v<T, Alive2Request>) {
          handleAlive2(std::move(req));
        } else if constexpr (std::is_same_v<T, Port2Request>) {
          close();  // serveRequest() answers lookups: never here.
        } else if constexpr (std::is_same_v<T, NamesRequest>) {
          handleNames(false);
        } else if constexpr (std::is_same_v<T, DumpRequest>) {
          handleNames(true);
        } else if constexpr (std::is_same_v<T, StopRequest>) {
          handleStop(req);
        } else {
          handleKill();
        }
      },
      std::move(request));
}

void Session::handleAlive2(Alive2Request&& req) {
  ++ctx_.metrics.req_alive2;
  const uint16_t highest = req.node.highest_version;
  const std::string name = req.node.name;
  const int fd = socket_.native_handle();
  const std::string peer = this->peer();
  // The daemon's side of the connection, for the holder lookup (sock_diag matches the
  // 4-tuple): one getsockname per registration, none per lookup.
  error_code local_ec;
  const auto local = socket_.local_endpoint(local_ec);
  auto added = ctx_.registry.add(
      std::move(req.node),
      registry::Origin{peer, fd, local_ec ? std::string() : formatEndpoint(local)},
      std::weak_ptr<registry::RegistrationOwner>(shared_from_this()));
  std::string bytes;
  // A refusal OTP's epmd never gives (a name held after an eviction, the node limit) ends
  // the connection once answered: the node retries on a new connection every couple of
  // seconds, and a kept refused connection would be one more open socket per retry, on
  // both sides, for as long as the hold lasts. OTP's own refusal (a duplicate name) keeps
  // the connection open, as OTP does.
  bool close_after_reply = false;
  if (added) {
    registration_ = added.value();
    bytes = encodeAlive2Reply(true, registration_->creation(), highest);
    log::info("registered", {{"name", log::printable(name)},
                             {"port", registration_->node.port},
                             {"creation", registration_->creation()},
                             {"id", registration_->id},
                             {"peer", peer}});
  } else {
    bytes = encodeAlive2Reply(false, kErrorCreation, highest);
    close_after_reply = added.error() == registry::RegisterError::NameHeld ||
                        added.error() == registry::RegisterError::TooManyNodes;
    log::warn("registration refused", {{"name", log::printable(name)},
                                       {"reason", std::string(toString(added.error()))},
                                       {"peer", peer}});
  }
  std::vector<std::string> parts;
  parts.push_back(std::move(bytes));
  reply(std::move(parts), [self = shared_from_this(), close_after_reply](bool ok) {
    if (!ok || close_after_reply) {
      // The node is gone before it heard back: no zombie registration (OTP unregisters
      // by name here, which could drop another holder; we drop only our own).
      if (self->registration_) {
        self->ctx_.registry.remove(*self->registration_,
                                   registry::UnregisterReason::ConnectionClosed);
      }
      self->close();
      return;
    }
    // Success or error reply alike, OTP keeps the connection (keep = TRUE), and no
    // timeout applies to it any more.
    self->PendingHook::unlink();
    self->doWatchRegistered();
  });
}

void Session::handleNames(bool dump) {
  ++(dump ? ctx_.metrics.req_dump : ctx_.metrics.req_names);
  const auto snapshot = ctx_.registry.list();
  std::vector<std::string> parts;
  parts.reserve(snapshot.nodes.size() + 1);
  parts.push_back(encodePortHeader(ctx_.epmd_port));
  for (const auto& r : snapshot.nodes) {
    parts.push_back(
        dump ? encodeDumpActiveLine(r->node.name, r->node.port, r->origin.connection_handle)
             : encodeNamesLine(r->node.name, r->node.port));
  }
  if (dump) {
    for (const auto& u : ctx_.registry.unusedNames()) {
      parts.push_back(encodeDumpUnusedLine(u.name, u.port, u.connection_handle));
    }
  }
  replyAndClose(std::move(parts));
}

void Session::handleStop(const StopRequest& req) {
  ++ctx_.metrics.req_stop;
  const std::string peer = this->peer();
  auto stopped = ctx_.registry.evict(req.name, std::nullopt, registry::UnregisterReason::Stopped,
                                     "epmd-stop@" + peer, "STOP_REQ");
  std::vector<std::string> parts;
  if (stopped) {
    log::info("unregistered",
              {{"name", log::printable(req.name)}, {"reason", "stopped"}, {"by", peer}});
  } else {
    // OTP sends NOEXIST and then falls through to STOPPED as well.
    parts.emplace_back(kNoExist);
  }
  parts.emplace_back(kStopped);
  replyAndClose(std::move(parts));
}

void Session::handleKill() {
  ++ctx_.metrics.req_kill;
  if (!access_.relaxed && ctx_.registry.size() != 0) {
    log::warn("refused KILL_REQ: live nodes", {{"peer", peer()}});
    replyAndClose({std::string(kKillNo)});
    return;
  }
  std::vector<std::string> parts{std::string(kKillOk)};
  reply(std::move(parts), [self = shared_from_this()](bool) {
    self->close();
    self->ctx_.on_kill(self->peer());  // It logs what closes and what still serves.
  });
}

void Session::reply(std::vector<std::string>&& parts, std::function<void(bool)> done) {
  last_activity_ = std::chrono::steady_clock::now();
  if (ctx_.options.delay_write.count() == 0) {
    // Without an artificial delay one write is cheaper; the bytes are the same.
    std::string all;
    for (auto& p : parts) {
      all += p;
    }
    // Replies are small and the socket's buffer is empty: a direct send almost always
    // takes it all, with no asynchronous operation kept alive (memory per registration).
    const ssize_t sent =
        sys::sendSome(socket_.native_handle(), all.data(), all.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      log::debug("write failed", {{"peer", peer()}, {"error", std::strerror(errno)}});
      done(false);
      return;
    }
    if (sent == static_cast<ssize_t>(all.size())) {
      done(true);
      return;
    }
    parts.clear();
    parts.push_back(all.substr(sent > 0 ? static_cast<size_t>(sent) : 0));
  }
  writeNext(std::make_shared<std::vector<std::string>>(std::move(parts)), 0, std::move(done));
}

void Session::writeNext(std::shared_ptr<std::vector<std::string>> parts, size_t index,
                        std::function<void(bool)> done) {
  if (closed_) {
    done(false);
    return;
  }
  if (index == parts->size()) {
    done(true);
    return;
  }
  // The packet timeout counts from the reply's last progress: a client that reads slowly is
  // served, one that stopped reading is cut.
  auto write = [self = shared_from_this(), parts, index, done]() mutable {
    self->last_activity_ = std::chrono::steady_clock::now();
    asio::async_write(
        self->socket_, asio::buffer((*parts)[index]),
        [self, parts, index, done](const error_code& ec, size_t) mutable {
          if (ec) {
            log::debug("write failed", {{"peer", self->peer()}, {"error", ec.message()}});
            done(false);
            return;
          }
          self->last_activity_ = std::chrono::steady_clock::now();
          self->writeNext(parts, index + 1, std::move(done));
        });
  };
  if (ctx_.options.delay_write.count() > 0) {
    // OTP sleeps before every write (and blocks everyone); we delay only this connection.
    delay_->expires_after(ctx_.options.delay_write);
    delay_->async_wait([write = std::move(write)](const error_code&) mutable { write(); });
  } else {
    write();
  }
}

void Session::replyAndClose(std::vector<std::string>&& parts) {
  reply(std::move(parts), [self = shared_from_this()](bool) { self->close(); });
}

void Session::doWatchRegistered() {
  if (ctx_.held != nullptr && hold()) {
    return;
  }
  // Wait for readability rather than keep a read pending: no buffer per registration,
  // and a smaller pending operation (memory per registration is a product figure).
  socket_.async_wait(Socket::wait_read, [self = shared_from_this()](const error_code& ec) {
    self->onRegisteredReadable(ec);
  });
}

bool Session::hold() {
  const int fd = socket_.native_handle();
  if (!ctx_.held->add(*this, fd)) {
    return false;
  }
  // No operation is pending (the reply is written): release() only takes the descriptor
  // out of asio's reactor and frees its state there.
  error_code ec;
  socket_.release(ec);
  if (ec) {
    ctx_.held->remove(fd);
    PendingHook::unlink();
    return false;
  }
  held_fd_ = fd;
  self_ = shared_from_this();
  return true;
}

void Session::onRegisteredReadable(const error_code& ec) {
  if (closed_) {
    return;
  }
  // OTP: on a kept ALIVE connection, EOF, an error or any data ends the registration.
  // Like OTP's do_read we read up to a whole input buffer once before closing: what we
  // leave unread makes the kernel answer the close with a reset instead of a FIN, so a
  // short read here would turn OTP's FIN into RST for any extra data above its size.
  char probe[kInBufSize];
  ssize_t n = 0;
  if (!ec) {
    n = sys::recvSome(descriptor(), probe, sizeof probe, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (held_fd_ < 0) {
        doWatchRegistered();  // Spurious wake-up: nothing to read after all.
      }                       // The HeldSet keeps watching a held one.
      return;
    }
  }
  if (registration_) {
    if (n > 0) {
      log::warn("unexpected data on registered connection", {{"peer", peer()}, {"bytes", n}});
    }
    if (ctx_.registry.remove(*registration_, registry::UnregisterReason::ConnectionClosed)) {
      log::info("unregistered", {{"name", log::printable(registration_->node.name)},
                                 {"reason", "connection_closed"},
                                 {"id", registration_->id}});
    }
  }
  close();
}

void Session::closeRegistration() {
  asio::post(socket_.get_executor(), [self = shared_from_this()] { self->close(); });
}

void Session::closeIfIdle(std::chrono::steady_clock::time_point now) {
  // OTP closes an idle connection when mod_time + packet_timeout < now, in whole seconds,
  // so an idle gap of exactly packet_timeout survives. We close once it reaches
  // packet_timeout + 1 s on the monotonic clock.
  if (now - last_activity_ >= ctx_.options.packet_timeout + std::chrono::seconds(1)) {
    ++ctx_.metrics.packet_timeouts;
    log::debug("closing idle connection", {{"peer", peer()}});
    close();
  }
}

void Session::shed() {
  ++(SilentHook::is_linked() ? metrics_.shed_silent : metrics_.shed_partial);
  if (log::enabled(log::Level::Debug)) {  // A flood sheds many: no text built without -d.
    log::debug("shedding idle connection", {{"peer", peer()}});
  }
  close();
}

std::string Session::peer() const {
  return formatEndpoint(remote_);
}

void Session::close() {
  if (closed_) {
    return;
  }
  // A held session lets go of itself, last (on return): its caller holds a reference.
  const std::shared_ptr<Session> keep = std::move(self_);
  closed_ = true;
  // Counted out with its descriptor, not when the last handler lets go of the session: the
  // listener's shedding plans with this count.
  --metrics_.connections_open;
  PendingHook::unlink();
  SilentHook::unlink();
  error_code ignored;
  if (delay_) {
    delay_->cancel();
  }
  if (held_fd_ >= 0) {
    ctx_.held->remove(held_fd_);
    ::close(held_fd_);
    held_fd_ = -1;
  }
  socket_.close(ignored);
}

HeldSet::HeldSet(asio::io_context& io) : epoll_(io.get_executor()) {
  const int fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) {
    return;  // add() then refuses, and sessions keep the asio wait.
  }
  error_code ec;
  epoll_.assign(fd, ec);
  if (ec) {
    ::close(fd);
    return;
  }
  arm();
}

HeldSet::~HeldSet() {
  while (!held_.empty()) {
    Session& s = held_.front();
    held_.pop_front();
    ::close(s.held_fd_);
    s.held_fd_ = -1;
    s.closed_ = true;
    --s.metrics_.connections_open;
    s.self_.reset();  // May destroy it.
  }
}

bool HeldSet::add(Session& session, int fd) {
  if (!epoll_.is_open()) {
    return false;
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP;  // Level-triggered; errors and hang-ups always count.
  ev.data.ptr = &session;
  if (::epoll_ctl(epoll_.native_handle(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    return false;
  }
  held_.push_back(session);
  return true;
}

void HeldSet::remove(int fd) {
  epoll_event ignored{};
  ::epoll_ctl(epoll_.native_handle(), EPOLL_CTL_DEL, fd, &ignored);
}

void HeldSet::arm() {
  epoll_.async_wait(Descriptor::wait_read, [this](const error_code& ec) {
    if (ec) {
      return;  // Closed: the set is being destroyed (do not touch it).
    }
    // Re-armed before draining: readiness that comes after the drain wakes the new wait
    // (asio's reactor is edge-triggered), readiness before it is read by the drain.
    arm();
    drain();
  });
}

void HeldSet::drain() {
  constexpr int kBatch = 64;
  epoll_event events[kBatch];
  for (;;) {
    const int n =
        sys::retryEintr([&] { return ::epoll_wait(epoll_.native_handle(), events, kBatch, 0); });
    for (int i = 0; i < n; ++i) {
      // In the set means alive: a session leaves it (close) before it lets go of itself.
      const std::shared_ptr<Session> s = static_cast<Session*>(events[i].data.ptr)->self_;
      if (s) {
        s->onRegisteredReadable({});
      }
    }
    if (n < kBatch) {
      return;
    }
  }
}

}  // namespace epmdx::epmd
