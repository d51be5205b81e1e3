#pragma once

// A loopback TCP proxy whose connections a test can cut at will (a network blip).

#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace epmdx::testing {

class TcpProxy {
 public:
  explicit TcpProxy(uint16_t target_port);
  ~TcpProxy();
  uint16_t port() const { return port_; }
  /// Closes every proxied connection (both sides); new ones are still accepted.
  void cutAll();
  int connectionsSeen() const { return seen_.load(); }
  /// While paused nothing is read from the target: its kernel buffers fill and its writes
  /// stall, as behind a client that stopped reading. The other direction still flows.
  void setPaused(bool paused) { paused_ = paused; }

 private:
  void run();
  uint16_t target_;
  uint16_t port_ = 0;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<int> seen_{0};
  std::atomic<bool> paused_{false};
  std::mutex mu_;
  std::vector<std::pair<int, int>> pairs_;  // Guarded by mu_.
  std::thread thread_;
};

}  // namespace epmdx::testing
