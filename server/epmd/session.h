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

#include <boost/intrusive/list.hpp>

#include "server/common/asio.h"
#include "server/epmd/access_policy.h"
#include "server/epmd/codec.h"
#include "server/epmd/metrics.h"
#include "server/registry/cluster_view.h"

namespace epmdx::epmd {

struct ListenerOptions {
  uint16_t port = 4369;
  std::string addresses;  // OTP's -address list: comma/space separated; empty = any.
  bool relaxed = false;   // -relaxed_command_check.
  std::chrono::seconds packet_timeout{60};
  std::chrono::seconds delay_accept{0};  // Test aid from OTP: wait before each accept.
  std::chrono::seconds delay_write{0};   // Test aid from OTP: wait before each reply write.
  std::vector<int> inherited_fds;        // Listening sockets from systemd (-systemd).
  /// The descriptor limit to plan shedding for; 0: the process's RLIMIT_NOFILE. Tests set
  /// it to shed without exhausting their own descriptor table.
  size_t descriptor_limit = 0;
};

struct SessionContext;
class HeldSet;

/// A socket bound to the io_context's own executor type rather than the type-erased
/// any_io_executor: smaller sockets and smaller pending operations, per connection.
using Socket = asio::basic_stream_socket<tcp, asio::io_context::executor_type>;

/// Links a session into the listener's list of connections that still owe a request or
/// are writing its reply (subject to the packet timeout), and, once registered, into the
/// HeldSet's list (one list at a time). Unlinks itself when destroyed.
using PendingHook =
    boost::intrusive::list_base_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;
/// Links a session into the list of connections that have not sent a byte yet: the first
/// to go when descriptors run short. A subset of the pending list, in the same order.
struct SilentTag;
using SilentHook =
    boost::intrusive::list_base_hook<boost::intrusive::tag<SilentTag>,
                                     boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;

class Session final : public std::enable_shared_from_this<Session>,
                      public registry::RegistrationOwner,
                      public PendingHook,
                      public SilentHook {
 public:
  /// @param frame bytes the listener already read from the socket, if any.
  Session(Socket socket, const tcp::endpoint& remote, SessionContext& ctx,
          std::unique_ptr<FrameAssembler> frame = nullptr);
  ~Session() override;

  void start();
  /// Starts from bytes the listener already read: `status` is what they amounted to.
  void startWith(FrameAssembler::Status status);
  /// The request was answered already but `rest` of the reply could not be sent at once.
  void startWithReply(std::string rest);

  /// Closes the connection if it made no progress within the packet timeout: no complete
  /// request yet, or a reply the client does not read. Called by the listener's sweep.
  void closeIfIdle(std::chrono::steady_clock::time_point now);

  /// Closes a connection that still owes its request (or has not taken its reply) because
  /// the daemon is short of descriptors (the listener picks which: oldest silent first).
  void shed();
  /// When the connection last made progress: accepted, bytes of its request arrived, or
  /// bytes of its reply were written.
  std::chrono::steady_clock::time_point lastActivity() const { return last_activity_; }

  /// The registry removed our registration (STOP_REQ, eviction, kill): close the socket.
  void closeRegistration() override;

 private:
  void doRead();
  void onReadable(const boost::system::error_code& ec);
  void onFrame(FrameAssembler::Status status);
  void handle(Request&& request);
  /// -d: one debug line naming the request, its name argument and the peer.
  void logRequest(const Request& request) const;
  void handleAlive2(Alive2Request&& req);
  void handleNames(bool dump);
  void handleStop(const StopRequest& req);
  void handleKill();

  /// Writes the reply parts in order, then calls `done` with the outcome.
  void reply(std::vector<std::string>&& parts, std::function<void(bool ok)> done);
  void writeNext(std::shared_ptr<std::vector<std::string>> parts, size_t index,
                 std::function<void(bool ok)> done);
  void replyAndClose(std::vector<std::string>&& parts);

  void doWatchRegistered();
  /// Moves the registered connection from asio's reactor into the listener's HeldSet.
  /// False if it could not (the asio wait is used instead).
  bool hold();
  void onRegisteredReadable(const boost::system::error_code& ec);
  /// The connection's descriptor, whether asio or the HeldSet watches it.
  int descriptor() { return held_fd_ >= 0 ? held_fd_ : socket_.native_handle(); }
  friend class HeldSet;

  void close();
  /// The client's address as logs and the registry show it, formatted when asked for.
  std::string peer() const;

  Socket socket_;
  SessionContext& ctx_;  // Owned by the Listener: not to be used in the destructor.
  Metrics& metrics_;     // Outlives every session, even those the io_context destroys last.
  tcp::endpoint remote_;
  Access access_;                          // Decided at accept, as OTP's (decideAccess).
  std::unique_ptr<FrameAssembler> frame_;  // Freed once the request is handled.
  std::unique_ptr<asio::basic_waitable_timer<std::chrono::steady_clock,
                                             asio::wait_traits<std::chrono::steady_clock>,
                                             asio::io_context::executor_type>>
      delay_;  // Only with -delay_write.
  std::chrono::steady_clock::time_point last_activity_;
  registry::RegistrationPtr registration_;
  // While held (see HeldSet): the socket's descriptor, released from asio, and the
  // reference that keeps the session alive in place of a pending asio operation.
  std::shared_ptr<Session> self_;
  int held_fd_ = -1;
  bool closed_ = false;
};

using PendingList = boost::intrusive::list<Session, boost::intrusive::base_hook<PendingHook>,
                                           boost::intrusive::constant_time_size<false>>;
using SilentList = boost::intrusive::list<Session, boost::intrusive::base_hook<SilentHook>,
                                          boost::intrusive::constant_time_size<false>>;

/// The connections held as registrations, watched through one epoll set of the listener's
/// own rather than one asio descriptor each. A registered connection only waits, silent,
/// for its end, and with asio each costs reactor state (about 170 B) and a pending wait
/// operation (about 110 B): most of memory per registration, which is a product figure.
/// Here it costs an entry in the kernel's epoll set. The set is level-triggered, and the
/// asio wait on it is re-armed before it is drained, so no readiness is missed.
/// Threading: the epmd io_context's thread only.
class HeldSet {
 public:
  explicit HeldSet(asio::io_context& io);
  /// Closes the connections still held, as destroying their asio sockets did.
  ~HeldSet();
  HeldSet(const HeldSet&) = delete;
  HeldSet& operator=(const HeldSet&) = delete;

  /// Watches `fd`, `session`'s connection, until it is readable (data, EOF or error).
  bool add(Session& session, int fd);
  /// Stops watching `fd` (before it is closed).
  void remove(int fd);

 private:
  void arm();
  void drain();

  using Descriptor = asio::posix::basic_stream_descriptor<asio::io_context::executor_type>;
  Descriptor epoll_;
  PendingList held_;  // Linked through the sessions' PendingHook.
};

/// What every session shares. Owned by the Listener.
struct SessionContext {
  registry::ClusterView registry;  // This port's cluster only.
  Metrics& metrics;
  const ListenerOptions& options;
  uint16_t epmd_port;  // The bound port, sent in NAMES/DUMP replies.
  // KILL_REQ accepted (from `peer`): this port closes (the daemon exits with the last one).
  std::function<void(const std::string& peer)> on_kill;
  PendingList pending;     // Sessions not done with their request, oldest first.
  SilentList silent;       // Those of them that have not sent a byte, oldest first.
  AccessPolicyPtr policy;  // Null: OTP's (anyone may list and resolve).
  // Refusals by policy are logged at most once per interval, with how many there were.
  std::chrono::steady_clock::time_point policy_log_after{};
  uint64_t policy_refusals_unlogged = 0;
  HeldSet* held = nullptr;  // Null: registered connections stay with asio's reactor.
};

}  // namespace epmdx::epmd
