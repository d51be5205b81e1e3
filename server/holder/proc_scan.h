#pragma once

// Which processes hold which sockets, read from /proc: every process's fd directory, each
// descriptor's link ("socket:[INODE]"). Threads share their process's descriptor table, so
// only thread-group leaders (the numeric entries of /proc) are read.

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace epmdx::holder {

/// One descriptor of one process.
struct SocketRef {
  pid_t pid = 0;
  int fd = -1;
  bool operator==(const SocketRef&) const = default;
};
using SocketRefs = std::unordered_map<uint64_t, std::vector<SocketRef>>;  // By socket inode.

struct FdScan {
  /// Socket inode -> the descriptors that hold it (several processes after a fork), by pid.
  SocketRefs holders;
  /// Processes whose fd directory could not be read (EACCES/EPERM: another user's process
  /// without CAP_SYS_PTRACE, or ptrace restrictions), with their real uid.
  std::vector<std::pair<pid_t, uid_t>> unreadable;
  size_t processes = 0;    // Processes visited by the full scan (0 when none was needed).
  size_t descriptors = 0;  // Descriptors read by the full scan.
  size_t confirmed = 0;    // Inodes settled by their hints alone.
  bool full_scan = false;  // Whether every process had to be read.
};

/// Finds the processes holding any of `inodes` under `proc_root` (normally "/proc").
/// `hints` (the holders an earlier scan found) are checked first, one readlink each: a
/// descriptor that still links to the inode holds it now (an inode is unique while its
/// socket lives). Only inodes no hint confirms cost a full scan of every process's fd
/// directory; with hints, a holder that appeared beside a confirmed one (a fork) is missed
/// until the next full scan. Blocking; thread-safe. Processes that exit meanwhile are
/// skipped.
FdScan scanSocketHolders(const std::unordered_set<uint64_t>& inodes,
                         const std::string& proc_root = "/proc", const SocketRefs* hints = nullptr);

/// A process as /proc shows it.
struct ProcessInfo {
  pid_t pid = 0;                  // As seen from the caller's PID namespace.
  std::vector<pid_t> nspids;      // NSpid: this pid in each nested namespace, outermost first.
  uid_t uid = 0;                  // Real uid.
  std::string user;               // Left empty by readProcessInfo (see userName()).
  std::string command;            // comm (at most 15 bytes).
  std::string command_line;       // argv joined with spaces, cookies redacted (cookie_redact.h);
                                  // empty for kernel threads/zombies.
  char state = '?';               // /proc/PID/stat field 3: R, S, D, T, t, Z, X, I.
  uint64_t start_time_ticks = 0;  // Field 22: with the pid, identifies the process.

  /// "running", "sleeping", "disk sleep", "stopped", "tracing stop", "zombie", "dead",
  /// "idle", or "unknown".
  std::string stateName() const;
};

/// Reads one process; false when it does not exist (any more) or cannot be read.
bool readProcessInfo(pid_t pid, ProcessInfo& out, const std::string& proc_root = "/proc");
/// The part that changes while a process lives, from /proc/PID/stat: resets `out` and fills
/// pid, command, state, start_time_ticks.
bool readProcessStat(pid_t pid, ProcessInfo& out, const std::string& proc_root = "/proc");
/// The part fixed for the life of a process (pid + start time): uid, nspids, command_line
/// (status and cmdline). `user` is left alone.
void readProcessDetails(pid_t pid, ProcessInfo& out, const std::string& proc_root = "/proc");

/// The name of a uid (NSS: /etc/passwd...), or the number when it has none.
std::string userName(uid_t uid);

/// The real uid of a process (the "Uid:" line of /proc/PID/status); -1 when unknown.
int64_t readProcessUid(pid_t pid, const std::string& proc_root = "/proc");

}  // namespace epmdx::holder
