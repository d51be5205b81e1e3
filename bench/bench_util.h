#pragma once

// Helpers shared by the benchmarks: child processes and what /proc says about them, and the
// lookup load loop (a fresh TCP connection per PORT_PLEASE2, as the VM does). The packets
// and sockets are tests/wire/wire.h's, shared with the tests.

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/wire/wire.h"

extern char** environ;

namespace epmdx::bench {

namespace wire = epmdx::wire;
using Clock = std::chrono::steady_clock;

/// Ignores SIGPIPE and raises the open-file limit: a benchmark holds thousands of sockets.
inline void prepareProcess() {
  signal(SIGPIPE, SIG_IGN);
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
}

inline long rssKib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::atol(line.c_str() + 6);
    }
  }
  return -1;
}

/// Entries of /proc/PID/task: the process's threads.
inline int threadCount(pid_t pid) {
  DIR* dir = opendir(("/proc/" + std::to_string(pid) + "/task").c_str());
  if (dir == nullptr) {
    return -1;
  }
  int n = 0;
  while (dirent* e = readdir(dir)) {
    n += e->d_name[0] == '.' ? 0 : 1;
  }
  closedir(dir);
  return n;
}

/// utime + stime of the process from /proc/PID/stat, in seconds.
inline double cpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  const std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = stat.rfind(')');  // The command may hold spaces: count from its end.
  if (close == std::string::npos) {
    return -1;
  }
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14 || i == 15) {  // utime, stime
      ticks += std::stod(field);
    }
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

/// CPU seconds (utime + stime) of each thread of a process, by thread name.
struct ThreadCpu {
  std::string name;
  double user = 0;
  double system = 0;
};
inline std::map<int, ThreadCpu> threadCpu(pid_t pid) {
  std::map<int, ThreadCpu> out;
  const std::string base = "/proc/" + std::to_string(pid) + "/task";
  DIR* dir = opendir(base.c_str());
  if (dir == nullptr) {
    return out;
  }
  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') {
      continue;
    }
    std::ifstream in(base + "/" + e->d_name + "/stat");
    const std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto open = stat.find('(');
    const auto close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos) {
      continue;
    }
    ThreadCpu t;
    t.name = stat.substr(open + 1, close - open - 1);
    std::istringstream rest(stat.substr(close + 2));
    std::string field;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14) {
        t.user = std::stod(field) / hz;
      } else if (i == 15) {
        t.system = std::stod(field) / hz;
      }
    }
    out[std::atoi(e->d_name)] = t;
  }
  closedir(dir);
  return out;
}

/// "epmdx 0.41u+1.20s, default-executo 0.10u+0.30s, ...": CPU per thread name since `before`.
inline std::string cpuBreakdown(const std::map<int, ThreadCpu>& before,
                                const std::map<int, ThreadCpu>& after) {
  std::map<std::string, std::pair<double, double>> by_name;
  for (const auto& [tid, t] : after) {
    auto it = before.find(tid);
    const double u = t.user - (it == before.end() ? 0 : it->second.user);
    const double s = t.system - (it == before.end() ? 0 : it->second.system);
    by_name[t.name].first += u;
    by_name[t.name].second += s;
  }
  std::string out;
  char buf[128];
  for (const auto& [name, us] : by_name) {
    if (us.first + us.second < 0.005) {
      continue;
    }
    std::snprintf(buf, sizeof buf, "%s%s %.2fu+%.2fs", out.empty() ? "" : ", ", name.c_str(),
                  us.first, us.second);
    out += buf;
  }
  return out;
}

class Server {
 public:
  Server(std::vector<std::string> argv) {
    std::vector<char*> a;
    for (auto& s : argv) {
      a.push_back(s.data());
    }
    a.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    if (posix_spawn(&pid_, a[0], &fa, nullptr, a.data(), environ) != 0) {
      pid_ = -1;
    }
    posix_spawn_file_actions_destroy(&fa);
  }
  ~Server() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

struct Point {
  double rate = 0;
  uint64_t errors = 0;
};

inline Point measure(uint16_t port, int clients, int held, double seconds) {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> ok{0};
  std::atomic<uint64_t> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      unsigned i = static_cast<unsigned>(t) * 7919u;
      char buf[4096];
      while (!stop.load(std::memory_order_relaxed)) {
        ++i;
        const std::string req =
            wire::portPlease2Request("n" + std::to_string(held > 0 ? i % held : 0));
        const int fd = wire::connectLoopbackFrom(port, i);
        if (fd < 0 || !wire::sendAll(fd, req)) {
          if (fd >= 0) {
            close(fd);
          }
          errors.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        ssize_t got = 0;
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0) {
          got += n;
        }
        close(fd);
        (got >= 2 ? ok : errors).fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  const auto t0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));  // The window.
  stop = true;
  for (auto& th : threads) {
    th.join();
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  return {static_cast<double>(ok.load()) / elapsed, errors.load()};
}

/// Opens `count` registrations n0..n{count-1}; returns the connections (held open).
inline std::vector<int> registerNames(uint16_t port, int count) {
  std::vector<int> fds;
  for (int i = 0; i < count; ++i) {
    const int fd = wire::connectLoopbackFrom(port, static_cast<unsigned>(i));
    if (fd < 0 ||
        !wire::sendAll(fd, wire::alive2Request("n" + std::to_string(i), 20000 + i % 10000))) {
      break;
    }
    const auto reply = wire::parseAlive2Reply(wire::readN(fd, 6, std::chrono::seconds(10)));
    if (!reply || reply->result != 0) {
      close(fd);
      break;
    }
    fds.push_back(fd);
  }
  return fds;
}

}  // namespace epmdx::bench
