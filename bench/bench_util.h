#pragma once

// Helpers shared by the benchmarks: raw epmd packets, loopback clients, child processes,
// and the lookup load loop (a fresh TCP connection per PORT_PLEASE2, as the VM does).

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

extern char** environ;

namespace epmdx::bench {

using Clock = std::chrono::steady_clock;

/// Ignores SIGPIPE and raises the open-file limit: a benchmark holds thousands of sockets.
inline void prepareProcess() {
  signal(SIGPIPE, SIG_IGN);
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
}

using Clock = std::chrono::steady_clock;

inline std::string frame(const std::string& body) {
  std::string out;
  out += static_cast<char>((body.size() >> 8) & 0xFF);
  out += static_cast<char>(body.size() & 0xFF);
  return out + body;
}

inline std::string alive2(const std::string& name, uint16_t port) {
  std::string b;
  auto put16 = [&b](size_t v) {
    b += static_cast<char>((v >> 8) & 0xFF);
    b += static_cast<char>(v & 0xFF);
  };
  b += 'x';
  put16(port);
  b += 'M';
  b += '\0';
  put16(6);
  put16(5);
  put16(name.size());
  b += name;
  put16(0);
  return frame(b);
}

// Client sockets come from 127.0.0.2..127.0.0.254 in turn, so that the 4-tuples of many
// short connections never run out.
inline int connectLoopback(uint16_t port, unsigned source) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return -1;
  }
  sockaddr_in src{};
  src.sin_family = AF_INET;
  src.sin_addr.s_addr = htonl(0x7F000000u | (2 + source % 253));
  bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

inline bool writeAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    const ssize_t n = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) {
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
}

inline uint16_t freePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

inline bool waitForPort(uint16_t port) {
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline) {
    const int fd = connectLoopback(port, 0);
    if (fd >= 0) {
      close(fd);
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
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
        const std::string req = frame("zn" + std::to_string(held > 0 ? i % held : 0));
        const int fd = connectLoopback(port, i);
        if (fd < 0 || !writeAll(fd, req)) {
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
    const int fd = connectLoopback(port, static_cast<unsigned>(i));
    if (fd < 0 || !writeAll(fd, alive2("n" + std::to_string(i), 20000 + i % 10000))) {
      break;
    }
    char r[6];
    size_t got = 0;
    while (got < 6) {
      const ssize_t n = read(fd, r + got, 6 - got);
      if (n <= 0) {
        break;
      }
      got += static_cast<size_t>(n);
    }
    if (got != 6 || r[1] != 0) {
      close(fd);
      break;
    }
    fds.push_back(fd);
  }
  return fds;
}

}  // namespace epmdx::bench
