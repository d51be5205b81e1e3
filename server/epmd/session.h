#pragma once

// One epmd client connection (Boost.Asio). It reads one length-prefixed request, answers
// it and closes, except after ALIVE2_REQ, where the connection *is* the registration: it
// stays open, silent, and the registration ends when it closes or sends anything.
//
// Threading: all methods run on the epmd io_context's single thread, except
// closeRegistration(), which any thread may call (it posts). Lifetime: shared_from_this,
// kept alive by whichever asynchronous operation is pending.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "server/common/asio.h"
#include "server/epmd/codec.h"
#include "server/epmd/metrics.h"
#include "server/registry/registry.h"

namespace epmdx::epmd {

struct ListenerOptions {
  uint16_t port = 4369;
  std::string addresses;  // OTP's -address list: comma/space separated; empty = any.
  bool relaxed = false;   // -relaxed_command_check.
  std::chrono::seconds packet_timeout{60};
  std::chrono::seconds delay_accept{0};  // Test aid from OTP: wait before each accept.
  std::chrono::seconds delay_write{0};   // Test aid from OTP: wait before each reply write.
  std::vector<int> inherited_fds;        // Listening sockets from systemd (-systemd).
};

/// What every session shares. Owned by the Listener.
struct SessionContext {
  registry::Registry& registry;
  Metrics& metrics;
  const ListenerOptions& options;
  uint16_t epmd_port;             // The bound port, sent in NAMES/DUMP replies.
  std::function<void()> on_kill;  // KILL_REQ accepted: the daemon must exit 0.
};

class Session final : public std::enable_shared_from_this<Session>,
                      public registry::RegistrationOwner {
 public:
  Session(tcp::socket socket, SessionContext& ctx);
  ~Session() override;

  void start();

  /// The registry removed our registration (STOP_REQ, eviction, kill): close the socket.
  void closeRegistration() override;

 private:
  void doRead();
  void onRead(const boost::system::error_code& ec, size_t n);
  void handle(Request&& request);
  void handleAlive2(Alive2Request&& req);
  void handlePort2(const Port2Request& req);
  void handleNames(bool dump);
  void handleStop(const StopRequest& req);
  void handleKill();

  /// Writes the reply parts in order, then calls `done` with the outcome.
  void reply(std::vector<std::string>&& parts, std::function<void(bool ok)> done);
  void writeNext(std::shared_ptr<std::vector<std::string>> parts, size_t index,
                 std::function<void(bool ok)> done);
  void replyAndClose(std::vector<std::string>&& parts);

  void doWatchRegistered();
  void onRegisteredRead(const boost::system::error_code& ec, size_t n);

  void armTimer();
  void onTimer(const boost::system::error_code& ec);
  void close();
  std::string describe() const;

  tcp::socket socket_;
  SessionContext& ctx_;
  Access access_;
  std::string peer_;
  std::unique_ptr<FrameAssembler> frame_;  // Freed once the request is handled.
  asio::steady_timer timer_;               // Packet timeout, and delay_write.
  std::chrono::steady_clock::time_point last_activity_;
  registry::RegistrationPtr registration_;
  bool closed_ = false;
  char probe_[8];  // A registered connection reads only to notice close or stray bytes.
};

}  // namespace epmdx::epmd
