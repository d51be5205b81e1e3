#include "server/probe/prober.h"

#include <deque>
#include <optional>
#include <thread>
#include <unordered_map>

#include "server/common/asio.h"

#include <boost/asio/ssl.hpp>

namespace epmdx::probe {
namespace {

using Clock = std::chrono::steady_clock;
using Socket = asio::basic_stream_socket<tcp, asio::io_context::executor_type>;
using Timer =
    asio::basic_waitable_timer<Clock, asio::wait_traits<Clock>, asio::io_context::executor_type>;
using TlsStream = asio::ssl::stream<Socket>;

// An empty distribution packet: the 2-byte big-endian length 0 that frames every handshake
// message. OTP's recv_name accepts only a packet that starts with 'N' (OTP 25; 'n' or 'N'
// before) and otherwise exits the handshake process with `shutdown`, silently, which
// closes the socket. A packet with no name creates no atom and no pending connection.
constexpr char kProbeBytes[2] = {0, 0};

std::chrono::microseconds since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
}

std::string ms(std::chrono::milliseconds d) {
  return std::to_string(d.count()) + " ms";
}

}  // namespace

std::string_view toString(Liveness liveness) {
  return liveness == Liveness::Alive ? "alive" : "unresponsive";
}

std::string_view toString(Failure failure) {
  switch (failure) {
    case Failure::None:
      return "none";
    case Failure::NoAnswer:
      return "no_answer";
    case Failure::NoConnection:
      return "no_connection";
    case Failure::Refused:
      return "refused";
    case Failure::Error:
      return "error";
  }
  return "error";
}

class Prober::Impl {
 public:
  Impl(ProberOptions options, OnResult on_result)
      : options_(options),
        on_result_(std::move(on_result)),
        work_(asio::make_work_guard(io_)),
        thread_([this] { io_.run(); }) {}

  ~Impl() {
    asio::post(io_, [this] { stop(); });
    work_.reset();
    thread_.join();
  }

  void watch(uint64_t id, ProbeTarget target) {
    asio::post(io_, [this, id, target = std::move(target)]() mutable {
      if (stopping_) {
        return;
      }
      auto& w = watched_[id];
      if (!w) {
        w = std::make_unique<Watched>(io_.get_executor());
      }
      w->target = std::move(target);
      ++w->generation;  // A probe in flight for the old target reports nothing.
      w->timer.cancel();
      startWatched(id, *w);
    });
  }

  void unwatch(uint64_t id) {
    asio::post(io_, [this, id] {
      if (auto it = watched_.find(id); it != watched_.end()) {
        it->second->timer.cancel();
        watched_.erase(it);
      }
    });
  }

  void probeOnce(ProbeTarget target, OnOnce done) {
    asio::post(io_, [this, target = std::move(target), done = std::move(done)]() mutable {
      if (!stopping_) {
        enqueue(std::move(target), std::move(done));
      }
    });
  }

 private:
  struct Watched {
    explicit Watched(asio::io_context::executor_type ex) : timer(ex) {}
    ProbeTarget target;
    Timer timer;
    uint64_t generation = 0;
    std::optional<Liveness> last;
    uint32_t failures = 0;
  };

  // One probe: connect, then send the empty packet and wait for the VM to close or answer
  // (or, for a TLS target, run a TLS handshake). Lives in ops_ from start to verdict; runs
  // on the io thread only.
  struct Op {
    Op(asio::io_context::executor_type ex, asio::ssl::context& tls_context, ProbeTarget t, OnOnce d)
        : timer(ex), target(std::move(t)), done(std::move(d)) {
      if (target.tls) {
        tls = std::make_unique<TlsStream>(ex, tls_context);
      } else {
        plain.emplace(ex);
      }
    }
    Socket& socket() { return tls ? tls->next_layer() : *plain; }
    std::optional<Socket> plain;
    std::unique_ptr<TlsStream> tls;
    Timer timer;
    ProbeTarget target;
    OnOnce done;
    Clock::time_point start;
    bool connected = false;
    bool tls_detected = false;
    bool finished = false;
    char buf[64];
  };

  void startWatched(uint64_t id, Watched& w) {
    const uint64_t generation = w.generation;
    enqueue(w.target, [this, id, generation](const ProbeResult& r) {
      auto it = watched_.find(id);
      if (it == watched_.end() || it->second->generation != generation) {
        return;  // Unwatched or re-targeted meanwhile.
      }
      Watched& cur = *it->second;
      ProbeResult result = r;
      result.changed = !cur.last || *cur.last != r.liveness;
      cur.failures = r.liveness == Liveness::Alive ? 0 : cur.failures + 1;
      result.consecutive_failures = cur.failures;
      cur.last = r.liveness;
      if (r.tls_detected) {
        cur.target.tls = true;  // From now on, a TLS handshake instead of our packet.
      }
      cur.timer.expires_after(options_.interval);
      cur.timer.async_wait([this, id, generation](const boost::system::error_code& ec) {
        auto again = watched_.find(id);
        if (ec || stopping_ || again == watched_.end() || again->second->generation != generation) {
          return;
        }
        startWatched(id, *again->second);
      });
      on_result_(id, result);  // Last: it may unwatch (erase `cur`).
    });
  }

  void enqueue(ProbeTarget target, OnOnce done) {
    auto op =
        std::make_shared<Op>(io_.get_executor(), tls_context_, std::move(target), std::move(done));
    if (ops_.size() >= options_.max_in_flight) {
      waiting_.push_back(std::move(op));
      return;
    }
    begin(std::move(op));
  }

  void begin(std::shared_ptr<Op> op) {
    op->start = Clock::now();
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(op->target.address, ec);
    if (ec) {
      ops_.emplace(op.get(), op);
      finish(*op, Failure::Error, "invalid address \"" + op->target.address + "\"");
      return;
    }
    ops_.emplace(op.get(), op);
    op->timer.expires_after(options_.timeout);
    op->timer.async_wait([this, op](const boost::system::error_code& tec) {
      if (tec || op->finished) {
        return;
      }
      // A stopped VM's kernel still completes the TCP handshake: "connected, no answer"
      // is the hung VM; "no connection" is a full accept queue or a silent network.
      if (op->connected) {
        finish(*op, Failure::NoAnswer, "timeout: connected, no answer in " + ms(options_.timeout));
      } else {
        finish(*op, Failure::NoConnection, "timeout: no connection in " + ms(options_.timeout));
      }
    });
    op->socket().async_connect(
        tcp::endpoint(address, op->target.port),
        [this, op](const boost::system::error_code& cec) { onConnect(op, cec); });
  }

  void onConnect(const std::shared_ptr<Op>& op, const boost::system::error_code& ec) {
    if (op->finished) {
      return;
    }
    if (ec) {
      if (ec == asio::error::connection_refused) {
        finish(*op, Failure::Refused, "connection refused");
      } else {
        finish(*op, Failure::Error, "connect: " + ec.message());
      }
      return;
    }
    op->connected = true;
    boost::system::error_code ignored;
    op->socket().set_option(tcp::no_delay(true), ignored);
    if (op->tls) {
      // A TLS distribution listener: the VM's ssl code must run the handshake. Closing
      // after it is quiet at the default logger level (notice); our plain packet is not.
      op->tls->async_handshake(
          asio::ssl::stream_base::client,
          [this, op](const boost::system::error_code& hec) { onTlsHandshake(*op, hec); });
      return;
    }
    asio::async_write(op->socket(), asio::buffer(kProbeBytes),
                      [this, op](const boost::system::error_code& wec, size_t) {
                        if (op->finished) {
                          return;
                        }
                        if (wec) {
                          onPeerClosed(*op, wec);
                          return;
                        }
                        op->socket().async_read_some(
                            asio::buffer(op->buf), [this, op](const boost::system::error_code& rec,
                                                              size_t n) { onRead(*op, rec, n); });
                      });
  }

  void onRead(Op& op, const boost::system::error_code& ec, size_t n) {
    if (op.finished) {
      return;
    }
    if (!ec && n >= 2 && op.buf[0] == 0x15 && op.buf[1] == 0x03) {
      // A TLS alert record: the node runs TLS distribution (inet_tls_dist), whose ssl code
      // refused our packet (and logged a notice); later probes of it must use TLS.
      op.tls_detected = true;
      finish(op, Failure::None, "answered with a TLS alert: the node uses TLS distribution");
      return;
    }
    if (!ec && n > 0) {
      finish(op, Failure::None, "answered (" + std::to_string(n) + " bytes)");
      return;
    }
    onPeerClosed(op, ec);
  }

  void onTlsHandshake(Op& op, const boost::system::error_code& ec) {
    if (op.finished) {
      return;
    }
    if (!ec) {
      finish(op, Failure::None, "completed a TLS handshake");
    } else if (ec.category() == asio::error::get_ssl_category() ||
               ec.category() == asio::ssl::error::get_stream_category()) {
      // The VM's ssl code answered, if only to refuse: it runs.
      finish(op, Failure::None, "answered the TLS handshake: " + ec.message());
    } else {
      onPeerClosed(op, ec);
    }
  }

  // Once connected, the node's own code closing the connection is the answer we want. Only
  // a running VM reads the packet and closes; its kernel alone never closes a connection
  // of a live process.
  void onPeerClosed(Op& op, const boost::system::error_code& ec) {
    if (ec == asio::error::eof) {
      finish(op, Failure::None, "closed the connection");
    } else if (ec == asio::error::connection_reset || ec == asio::error::broken_pipe) {
      finish(op, Failure::None, "reset the connection");
    } else {
      finish(op, Failure::Error, "read: " + ec.message());
    }
  }

  void finish(Op& op, Failure failure, std::string detail) {
    op.finished = true;
    boost::system::error_code ignored;
    op.socket().close(ignored);
    op.timer.cancel();
    auto self = std::move(ops_.at(&op));  // Keeps `op` alive to the end of this call.
    ops_.erase(&op);
    if (!stopping_) {
      ProbeResult result;
      result.liveness = failure == Failure::None ? Liveness::Alive : Liveness::Unresponsive;
      result.failure = failure;
      result.tls_detected = op.tls_detected;
      result.detail = std::move(detail);
      result.elapsed = since(op.start);
      op.done(result);
    }
    while (!stopping_ && !waiting_.empty() && ops_.size() < options_.max_in_flight) {
      auto next = std::move(waiting_.front());
      waiting_.pop_front();
      begin(std::move(next));
    }
  }

  void stop() {
    stopping_ = true;
    waiting_.clear();
    for (auto& [id, w] : watched_) {
      w->timer.cancel();
    }
    watched_.clear();
    for (auto& [raw, op] : ops_) {
      boost::system::error_code ignored;
      op->finished = true;
      op->socket().close(ignored);
      op->timer.cancel();
    }
    ops_.clear();  // Their handlers still hold them until they run (aborted).
  }

  const ProberOptions options_;
  const OnResult on_result_;
  // TLS probes only prove that the VM's ssl code runs: no certificate is checked.
  asio::ssl::context tls_context_{asio::ssl::context::tls_client};
  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  // Everything below is touched on the io thread only.
  bool stopping_ = false;
  std::unordered_map<uint64_t, std::unique_ptr<Watched>> watched_;
  std::unordered_map<Op*, std::shared_ptr<Op>> ops_;
  std::deque<std::shared_ptr<Op>> waiting_;
  std::thread thread_;  // Last: starts once everything above exists.
};

Prober::Prober(ProberOptions options, OnResult on_result)
    : options_(options), impl_(std::make_unique<Impl>(options, std::move(on_result))) {}

Prober::~Prober() = default;

void Prober::watch(uint64_t id, ProbeTarget target) {
  impl_->watch(id, std::move(target));
}

void Prober::unwatch(uint64_t id) {
  impl_->unwatch(id);
}

void Prober::probeOnce(ProbeTarget target, OnOnce done) {
  impl_->probeOnce(std::move(target), std::move(done));
}

}  // namespace epmdx::probe
