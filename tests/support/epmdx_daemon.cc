#include "tests/support/epmdx_daemon.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "tests/support/net.h"

namespace epmdx::testing {
namespace {

int counter = 0;

}  // namespace

EpmdxDaemon::EpmdxDaemon(std::vector<std::string> extra, bool tokens)
    : epmd_(freePort()), grpc_(freePort()), http_(freePort()) {
  const std::string base =
      "/tmp/epmdx-attack-" + std::to_string(getpid()) + "-" + std::to_string(++counter);
  std::vector<std::string> argv{epmdxBinary(), "-port", std::to_string(epmd_),
                                "--grpc-listen=127.0.0.1:" + std::to_string(grpc_),
                                "--http-listen=127.0.0.1:" + std::to_string(http_)};
  if (tokens) {
    tokens_path_ = base + ".tokens";
    std::ofstream(tokens_path_) << kAdminToken << " read evict name=attack\n"
                                << kReaderToken << " read name=reader\n";
    argv.push_back("--tokens-file=" + tokens_path_);
  } else {
    token_out_ = base + ".token";
    argv.push_back("--token-out=" + token_out_);
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  process_ = std::make_unique<Process>(argv);
}

EpmdxDaemon::~EpmdxDaemon() {
  process_.reset();
  if (!tokens_path_.empty()) {
    unlink(tokens_path_.c_str());
  }
  if (!token_out_.empty()) {
    unlink(token_out_.c_str());
  }
}

bool EpmdxDaemon::ready(std::chrono::milliseconds timeout) {
  return waitForPort(epmd_, timeout) && waitForPort(grpc_, timeout) && waitForPort(http_, timeout);
}

long EpmdxDaemon::rssKib() const {
  std::ifstream in("/proc/" + std::to_string(pid()) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::atol(line.c_str() + 6);
    }
  }
  return -1;
}

int EpmdxDaemon::threads() const {
  DIR* dir = opendir(("/proc/" + std::to_string(pid()) + "/task").c_str());
  if (dir == nullptr) {
    return -1;
  }
  int n = 0;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') {
      ++n;
    }
  }
  closedir(dir);
  return n;
}

double EpmdxDaemon::cpuSeconds() const {
  std::ifstream in("/proc/" + std::to_string(pid()) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the command (which may hold spaces) start after the last ')'.
  const auto close = stat.rfind(')');
  if (close == std::string::npos) {
    return -1;
  }
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  unsigned long long utime = 0;
  unsigned long long stime = 0;
  // rest starts at field 3 (state); utime and stime are fields 14 and 15.
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) {
      utime = std::stoull(field);
    } else if (i == 15) {
      stime = std::stoull(field);
    }
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

void raiseFileLimit() {
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
}

}  // namespace epmdx::testing
