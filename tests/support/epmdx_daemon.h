#pragma once

// The real epmdx binary on ephemeral loopback ports, for tests that measure the process
// (RSS, threads, CPU time) or need its command line. Never binds 4369-4371.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace epmdx::testing {

class EpmdxDaemon {
 public:
  static constexpr const char* kAdminToken = "attack-admin-token";
  static constexpr const char* kReaderToken = "attack-reader-token";

  /// Starts build/epmdx with free ports for epmd, gRPC and HTTP plus `extra` arguments.
  /// With `tokens` a tokens file holds kAdminToken (read evict) and kReaderToken (read);
  /// without, the daemon generates its token (into a temporary --token-out).
  explicit EpmdxDaemon(std::vector<std::string> extra = {}, bool tokens = true);
  ~EpmdxDaemon();

  /// True once every port accepts connections (false after `timeout`).
  bool ready(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  uint16_t epmdPort() const { return epmd_; }
  uint16_t grpcPort() const { return grpc_; }
  uint16_t httpPort() const { return http_; }
  pid_t pid() const { return process_->pid(); }
  Process& process() { return *process_; }

  /// VmRSS in KiB, from /proc/PID/status.
  long rssKib() const;
  /// Entries of /proc/PID/task.
  int threads() const;
  /// utime + stime from /proc/PID/stat, in seconds.
  double cpuSeconds() const;

 private:
  uint16_t epmd_;
  uint16_t grpc_;
  uint16_t http_;
  std::string tokens_path_;
  std::string token_out_;
  std::unique_ptr<Process> process_;
};

/// Raises this process's open-file soft limit to the hard limit (thousands of sockets).
void raiseFileLimit();

}  // namespace epmdx::testing
