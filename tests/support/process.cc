#include "tests/support/process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace epmdx::testing {
namespace {

int counter = 0;

}  // namespace

Process::Process(std::vector<std::string> argv, std::map<std::string, std::string> env) {
  const std::string base =
      "/tmp/epmdx-test-" + std::to_string(getpid()) + "-" + std::to_string(++counter);
  out_path_ = base + ".out";
  err_path_ = base + ".err";
  std::vector<std::string> envs;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string kv = *e;
    const auto key = kv.substr(0, kv.find('='));
    if (env.count(key) == 0) {
      envs.push_back(kv);
    }
  }
  for (const auto& [k, v] : env) {
    envs.push_back(k + "=" + v);
  }
  std::vector<char*> cargv;
  for (auto& a : argv) {
    cargv.push_back(a.data());
  }
  cargv.push_back(nullptr);
  std::vector<char*> cenv;
  for (auto& e : envs) {
    cenv.push_back(e.data());
  }
  cenv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);  // Own group: kill takes children.
  posix_spawnattr_setpgroup(&attr, 0);
  const int rc = posix_spawnp(&pid_, cargv[0], &fa, &attr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    throw std::runtime_error("cannot start " + argv[0]);
  }
}

Process::~Process() {
  if (running()) {
    kill(-pid_, SIGKILL);
    wait(std::chrono::seconds(5));
  }
  unlink(out_path_.c_str());
  unlink(err_path_.c_str());
}

std::optional<int> Process::wait(std::chrono::milliseconds timeout) {
  if (status_) {
    return status_;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int st = 0;
    const pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      return status_;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // Polling with a deadline.
  }
}

void Process::signal(int sig) {
  if (running()) {
    kill(pid_, sig);
  }
}

bool Process::running() {
  return !wait(std::chrono::milliseconds(0)).has_value();
}

std::string Process::stdoutText() const {
  return readFile(out_path_);
}
std::string Process::stderrText() const {
  return readFile(err_path_);
}

std::pair<int, std::string> runCommand(std::vector<std::string> argv,
                                       std::map<std::string, std::string> env,
                                       std::chrono::milliseconds timeout) {
  Process p(std::move(argv), std::move(env));
  const auto st = p.wait(timeout);
  return {st.value_or(-1), p.stdoutText()};
}

std::string epmdxBinary() {
  const char* b = std::getenv("EPMDX_BIN");
  return b != nullptr ? b : EPMDX_BIN_PATH;
}

std::string epmdxctlBinary() {
  const char* b = std::getenv("EPMDXCTL_BIN");
  return b != nullptr ? b : EPMDXCTL_BIN_PATH;
}

std::string sourceDir() {
  return EPMDX_SOURCE_PATH;
}
std::string buildDir() {
  return EPMDX_BUILD_PATH;
}

std::string otpEpmdBinary() {
  const char* b = std::getenv("EPMD_BIN");
  return b != nullptr ? b : "epmd";
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // Polling with a deadline.
  }
  return condition();
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace epmdx::testing
