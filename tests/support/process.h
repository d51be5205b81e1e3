#pragma once

// Child processes for integration tests (epmdx, OTP's epmd, erl), always reaped: the
// destructor kills what is still running.

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace epmdx::testing {

class Process {
 public:
  /// Starts `argv[0]` (searched in PATH) with extra environment variables. Output goes to
  /// files, readable with output().
  Process(std::vector<std::string> argv, std::map<std::string, std::string> env = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  /// Waits for exit; the exit status, or nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  void signal(int sig);
  bool running();
  pid_t pid() const { return pid_; }
  std::string stdoutText() const;
  std::string stderrText() const;

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::string out_path_;
  std::string err_path_;
};

/// Runs a command to completion and returns {exit status, stdout}.
std::pair<int, std::string> runCommand(
    std::vector<std::string> argv, std::map<std::string, std::string> env = {},
    std::chrono::milliseconds timeout = std::chrono::seconds(30));

/// Path of the epmdx binary under test (EPMDX_BIN, else the one this build made).
std::string epmdxBinary();
/// Path of epmdxctl (EPMDXCTL_BIN, else the one this build made).
std::string epmdxctlBinary();
/// The repository and the build directory.
std::string sourceDir();
std::string buildDir();
/// Path of OTP's epmd (EPMD_BIN, else the one on PATH).
std::string otpEpmdBinary();

/// Polls `condition` until it holds or `timeout` passes (tests wait on conditions, never on
/// time); true if it held.
bool eventually(const std::function<bool()>& condition,
                std::chrono::milliseconds timeout = std::chrono::seconds(20));

/// A whole file (empty if unreadable).
std::string readFile(const std::string& path);

}  // namespace epmdx::testing
