#pragma once

// The epmd listening sockets and their accept loops, bound with OTP's rules
// (erts/epmd/src/epmd_srv.c: run): by default the IPv4 and IPv6 wildcard addresses; with an
// address list, the loopback addresses first (non-fatal) and then each listed address.
//
// Threading: construct, bind() and start() before the io_context runs; stop() on the
// io_context's thread (post it).

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "server/common/asio.h"
#include "server/epmd/metrics.h"
#include "server/epmd/session.h"
#include "server/registry/cluster_view.h"

namespace epmdx::epmd {

class Listener {
 public:
  Listener(asio::io_context& io, registry::ClusterView registry, Metrics& metrics,
           ListenerOptions options, std::function<void()> on_kill);
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

  /// The port actually bound (differs from the option only when it was 0).
  uint16_t port() const { return context_.epmd_port; }
  /// The addresses listened on, for logs and health checks.
  std::vector<std::string> endpoints() const;

 private:
  struct Acceptor;
  void doAccept(Acceptor& a);
  void acceptBatch(Acceptor& a);
  void onAccepted(int fd, const tcp::endpoint& peer);
  /// Hands an accepted descriptor to Asio as a Session (null, and closed, on failure).
  std::shared_ptr<Session> adopt(int fd, const tcp::endpoint& peer,
                                 std::unique_ptr<FrameAssembler> frame);
  void doSweep();
  BindResult bindOne(const asio::ip::address& address, bool fatal);

  asio::io_context& io_;
  ListenerOptions options_;
  SessionContext context_;
  std::vector<std::unique_ptr<Acceptor>> acceptors_;
  FrameAssembler scratch_;    // The fast path's read buffer, reused for every connection.
  asio::steady_timer sweep_;  // Once a second: close connections past the packet timeout.
};

}  // namespace epmdx::epmd
