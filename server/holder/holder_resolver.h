#pragma once

// Who holds a registration: the process on this host that owns the other end of the
// registration's epmd connection. Through the kernel, never through the node: sock_diag
// finds the client socket's inode from the connection's addresses, /proc finds the
// processes whose descriptors point at that inode.
//
// Synchronous and blocking (a sock_diag dump and a /proc scan: milliseconds, see
// docs/dead-names.md), so never call it on the epmd thread: HolderService runs it on a thread
// of its own. Any thread may call it, concurrently. It remembers the holders it found, so
// that the next batch confirms them with one readlink each instead of reading every
// process's descriptors again.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "server/holder/endpoint.h"
#include "server/holder/proc_scan.h"
#include "server/holder/sock_diag.h"

namespace epmdx::holder {

enum class HolderStatus : uint8_t {
  Found,             // `processes` holds the socket's owner(s).
  NotOnHost,         // No such TCP connection in this network namespace: the peer is on
                     // another host or in another network namespace, or it has closed.
  NotVisible,        // The socket is here but no process visible here holds it: the holder
                     // runs in another PID namespace (a container without a shared process
                     // namespace), or /proc hides it (hidepid).
  PermissionDenied,  // The socket owner's processes are here but their /proc/PID/fd cannot be
                     // read (another user's processes, without root or CAP_SYS_PTRACE).
  Error,             // sock_diag itself failed (reason says which call and why).
};

/// "found", "not_on_host", "not_visible", "permission_denied", "error".
std::string_view toString(HolderStatus status);

struct Holder {
  HolderStatus status = HolderStatus::Error;
  std::string reason;         // Why it is not Found, for people; empty when Found.
  uint64_t socket_inode = 0;  // 0 when the socket was not found.
  uid_t socket_uid = 0;       // The socket owner's uid, when the socket was found.
  /// Found: the holders (usually one), ascending pid. Every holder when the socket was new
  /// to the resolver; when a remembered holder still holds it, only the remembered ones.
  std::vector<ProcessInfo> processes;
};

/// What one batch cost: the figures docs/dead-names.md quotes.
struct ResolveStats {
  std::chrono::microseconds sock_diag{0};     // The netlink dumps.
  std::chrono::microseconds proc_scan{0};     // Confirming holders, scanning /proc/PID/fd.
  std::chrono::microseconds process_info{0};  // stat, status, cmdline of the holders.
  size_t sockets = 0;                         // Sockets the (filtered) dump returned.
  size_t processes = 0;                       // Processes visited by the full scan.
  size_t descriptors = 0;                     // Descriptors read by the full scan.
  size_t confirmed = 0;                       // Sockets whose remembered holder still holds them.
  bool full_scan = false;                     // Whether every process's descriptors were read.
};

class HolderResolver {
 public:
  struct Options {
    std::string proc_root = "/proc";  // Where procfs is mounted.
    bool remember_holders = true;     // Confirm last batch's holders before a full scan.
  };

  HolderResolver() : HolderResolver(Options{}) {}
  explicit HolderResolver(Options options) : options_(std::move(options)) {}
  HolderResolver(const HolderResolver&) = delete;
  HolderResolver& operator=(const HolderResolver&) = delete;

  /// Resolves many registrations with one sock_diag dump and one /proc scan.
  /// @param connections each registration's epmd connection as the DAEMON sees it:
  ///        local = the address and port the daemon accepted it on (the socket's
  ///        local_endpoint(), e.g. 127.0.0.1:4369), remote = the node's address and port.
  /// @return one Holder per connection, in the same order.
  std::vector<Holder> resolve(const std::vector<ConnectionKey>& connections,
                              ResolveStats* stats = nullptr) const;

  Holder resolveOne(const ConnectionKey& connection) const { return resolve({connection})[0]; }

 private:
  struct BatchCache;  // One batch's process details, by pid, and user names, by uid.
  /// The holders remembered from earlier batches, to confirm before a full scan.
  SocketRefs hints() const;
  /// Keeps this batch's holders and the earlier ones whose socket `live` (the dump) lists.
  void remember(const std::vector<TcpSocket>& live, const FdScan& scan) const;
  /// Fills `h` for the connection whose node end is `client` (null: not in the dump).
  void describe(Holder& h, const ConnectionKey& theirs, const TcpSocket* client, const FdScan& scan,
                BatchCache& cache) const;
  /// A holder's details: stat every time, the rest once per process life (remembered).
  const std::optional<ProcessInfo>& processInfo(pid_t pid, BatchCache& cache) const;
  /// Forgets the details of processes that no longer hold a remembered socket.
  void forgetGoneProcesses() const;

  const Options options_;
  mutable std::mutex mu_;
  mutable SocketRefs known_;  // Guarded by mu_. The holders of the last batch's sockets.
  // Guarded by mu_. What does not change while a remembered holder lives, by pid (checked
  // against its start time).
  mutable std::unordered_map<pid_t, ProcessInfo> details_;
};

}  // namespace epmdx::holder
