#include "tests/support/erlang.h"

#include <thread>

#include "tests/support/process.h"

namespace epmdx::testing {

std::map<std::string, std::string> erlEnv(uint16_t port) {
  return {{"ERL_EPMD_PORT", std::to_string(port)}, {"HOME", "/tmp"}};
}

bool waitForNames(uint16_t port, const std::string& needle, bool present,
                  std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto [code, out] = runCommand({otpEpmdBinary(), "-port", std::to_string(port), "-names"});
    if (code == 0 && (out.find(needle) != std::string::npos) == present) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // Polling with a deadline.
  }
  return false;
}

}  // namespace epmdx::testing
