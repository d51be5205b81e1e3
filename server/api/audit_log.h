#pragma once

// The audit file (--audit-file): every administrative change to the names (eviction, hold,
// lift, expiry) appended as one JSON line (an epmdx.v1.AuditRecord). It is a watcher like any
// other: a cursor on the registry's history read on a thread of its own, so writing the file
// never blocks a mutation or the epmd thread, and the lines follow revision order.

#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "server/api/watch_cursor.h"
#include "server/registry/registry.h"

namespace epmdx::api {

class AuditLog {
 public:
  explicit AuditLog(registry::Registry& registry);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  /// Opens `path` for appending (created 0640) and starts following changes from now on.
  /// @return an error message if the file cannot be opened.
  std::optional<std::string> start(const std::string& path);

  /// Writes what is pending, then stops.
  void stop();

  /// Whether an event is an administrative change (and so a line of the file).
  static bool audited(const registry::Event& e);

  /// The JSON line of an audited event (no newline).
  static std::string line(const ClusterNames& names, const registry::Event& e);

 private:
  void run();
  /// Writes every change there is to read.
  void drain();
  /// Fell behind the kept history: says so in the file, reads on from the oldest kept.
  void skipLost(registry::WatchRejection rejection);
  void writeLost(registry::Revision oldest_retained);
  registry::WatchPtr subscribe(registry::Revision start);
  /// The watch's wake-up (on the hub thread: quick, never blocks on the file).
  void wake();
  void write(const std::string& text);

  registry::Registry& registry_;
  const ClusterNames names_;
  std::string path_;
  int fd_ = -1;
  WatchCursor cursor_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool pending_ = false;  // Guarded by mu_.
  bool stop_ = false;     // Guarded by mu_.
  std::thread thread_;
};

}  // namespace epmdx::api
