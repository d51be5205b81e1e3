#pragma once

// The epmd listening sockets and their accept loops, bound with OTP's rules
// (erts/epmd/src/epmd_srv.c: run): by default the IPv4 and IPv6 wildcard addresses; with an
// address list, the loopback addresses first (non-fatal) and then each listed address.
//
// Threading: construct, bind() and start() before the io_context runs; stop() on the
// io_context's thread (post it).

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "server/common/asio.h"
#include "server/epmd/descriptor_guard.h"
#include "server/epmd/metrics.h"
#include "server/epmd/session.h"
#include "server/registry/cluster_view.h"

namespace epmdx::epmd {

class Listener {
 public:
  Listener(asio::io_context& io, registry::ClusterView registry, Metrics& metrics,
           ListenerOptions options, std::function<void(const std::string& peer)> on_kill);
  ~Listener();

  enum class BindStatus {
    Ok,
    AddressInUse,  // Another epmd has the port: OTP exits 0 quietly.
    Failed,        // Anything else: exit 1 with `message`.
  };
  struct BindResult {
    BindStatus status;
    std::string message;
  };
  BindResult bind();
  void start();
  void stop();
  /// Who may list and resolve names on this port from now on (connections accepted later).
  /// Call on the io_context's thread. Null: OTP's (anyone).
  void setPolicy(AccessPolicyPtr policy) { context_.policy = std::move(policy); }

  /// The port actually bound (differs from the option only when it was 0).
  uint16_t port() const { return context_.epmd_port; }
  /// The addresses listened on, for logs and health checks.
  std::vector<std::string> endpoints() const;

 private:
  struct Acceptor;
  void doAccept(Acceptor& a);
  void acceptBatch(Acceptor& a);
  /// Waits a little before accepting again (out of descriptors, or -delay_accept).
  void acceptLater(Acceptor& a, std::chrono::steady_clock::duration delay);
  /// Out of descriptors (EMFILE/ENFILE): serves or closes the connection waiting, if any.
  enum class Room {
    Made,           // A waiting connection was taken off the backlog: accept again.
    NobodyWaiting,  // The backlog is empty: wait for readability.
    None,           // No reserve descriptor to work with: back off.
  };
  Room makeRoom(Acceptor& a);
  /// Closes up to `max` connections that still owe their request, oldest silent ones
  /// first, then partial ones; only those idle for `min_idle` at least. @return how many.
  size_t shedIdle(size_t max, std::chrono::steady_clock::duration min_idle);
  /// Descriptors in use, at least: `lowest_free` (the number just handed out, say) and
  /// those open before start() plus one per connection.
  size_t inUse(int lowest_free) const;
  /// One log line at most every few seconds for shed connections and accept errors.
  void reportPressure(std::chrono::steady_clock::time_point now);
  void onAccepted(int fd, const tcp::endpoint& peer);
  /// The fast path: when the `n` bytes first read are a whole lookup, serves it (answered
  /// or refused) on the bare descriptor. @return false: the connection is a Session's.
  bool answerAtOnce(int fd, const tcp::endpoint& peer, const uint8_t* data, size_t n);
  /// Hands an accepted descriptor to Asio as a Session (null, and closed, on failure).
  std::shared_ptr<Session> adopt(int fd, const tcp::endpoint& peer,
                                 std::unique_ptr<FrameAssembler> frame);
  void doSweep();
  BindResult bindOne(const asio::ip::address& address, bool fatal);

  asio::io_context& io_;
  ListenerOptions options_;
  SessionContext context_;
  HeldSet held_;  // The registered connections (context_.held).
  std::vector<std::unique_ptr<Acceptor>> acceptors_;
  FrameAssembler scratch_;    // The fast path's read buffer, reused for every connection.
  asio::steady_timer sweep_;  // Once a second: close connections past the packet timeout.
  DescriptorGuard guard_;
  size_t base_descriptors_ = 0;  // In use when start() ran: listeners, admin servers, ...
  // What reportPressure() last logged, to log only what happened since.
  struct Reported {
    uint64_t shed_silent = 0, shed_partial = 0, shed_at_accept = 0, accept_errors = 0;
    std::optional<std::chrono::steady_clock::time_point> at;
  } reported_;
  int last_accept_error_ = 0;
  // stop() ran: an accept loop that is still on the stack (a KILL_REQ answered inside it
  // stops this listener) must not touch the closed acceptor again.
  bool stopped_ = false;
};

}  // namespace epmdx::epmd
