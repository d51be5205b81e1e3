#pragma once

// The real fleet relay (build/epmdx-fleet) on ephemeral loopback ports, with its own tokens
// file and a source token file holding EpmdxDaemon's admin token, so that it can follow (and
// evict through) EpmdxDaemon sources. Never binds 4369-4373.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace epmdx::testing {

/// Path of the relay under test (EPMDX_FLEET_BIN, else the one this build made).
std::string fleetBinary();

class FleetRelay {
 public:
  static constexpr const char* kAdminToken = "fleet-admin-token";
  static constexpr const char* kReaderToken = "fleet-reader-token";

  /// Starts the relay with `extra` arguments (its sources). With `source_token` it presents
  /// that token to its sources (--source-token-file); "" passes no such flag. The ports are
  /// fixed at construction: restart() brings the relay back on the same ones.
  explicit FleetRelay(std::vector<std::string> extra, std::string source_token = "");
  ~FleetRelay();
  FleetRelay(const FleetRelay&) = delete;
  FleetRelay& operator=(const FleetRelay&) = delete;

  /// True once both API ports accept connections.
  bool ready(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// SIGKILLs the relay and starts it again with the same arguments and ports.
  void restart();

  uint16_t grpcPort() const { return grpc_; }
  uint16_t httpPort() const { return http_; }
  std::string grpcAddress() const { return "127.0.0.1:" + std::to_string(grpc_); }
  Process& process() { return *process_; }
  /// The path of the source token file (rewrite it, then SIGHUP, to change the token).
  const std::string& sourceTokenPath() const { return source_token_path_; }

 private:
  void start();

  uint16_t grpc_;
  uint16_t http_;
  std::string tokens_path_;
  std::string source_token_path_;
  std::vector<std::string> argv_;
  std::unique_ptr<Process> process_;
};

}  // namespace epmdx::testing
