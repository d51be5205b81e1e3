// The epmd port past its descriptor limit: an epmdx whose
// RLIMIT_NOFILE is lowered with prlimit gets more idle connections (never a byte sent)
// than its limit, then a registration and lookups; reports how long they took, how many
// were answered, and how many log lines the daemon wrote about it.
//
//   overload_bench --epmdx=build/epmdx [--limit=4096] [--idle=5000] [--seconds=10]

#include <poll.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "bench/bench_util.h"

namespace epmdx::bench {
namespace {

struct Args {
  std::string epmdx = "build/epmdx";
  int limit = 4096;
  int idle = 5000;
  double seconds = 10;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    const auto value = [&s]() { return s.substr(s.find('=') + 1); };
    if (s.rfind("--epmdx=", 0) == 0) {
      a.epmdx = value();
    } else if (s.rfind("--limit=", 0) == 0) {
      a.limit = std::stoi(value());
    } else if (s.rfind("--idle=", 0) == 0) {
      a.idle = std::stoi(value());
    } else if (s.rfind("--seconds=", 0) == 0) {
      a.seconds = std::stod(value());
    } else {
      std::fprintf(stderr, "unknown argument %s\n", s.c_str());
      std::exit(2);
    }
  }
  return a;
}

double msSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

size_t countLines(const std::string& path, std::initializer_list<const char*> needles) {
  std::ifstream in(path);
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    for (const char* needle : needles) {
      if (line.find(needle) != std::string::npos) {
        ++n;
        break;
      }
    }
  }
  return n;
}

}  // namespace
}  // namespace epmdx::bench

int main(int argc, char** argv) {
  using namespace epmdx::bench;
  prepareProcess();
  const Args args = parse(argc, argv);
  const std::string log_path = "/tmp/epmdx-overload-bench-" + std::to_string(getpid()) + ".log";
  const std::string nofile = std::to_string(args.limit);
  uint16_t port = 0;
  pid_t pid = -1;
  // A port free a moment ago can be taken before the daemon binds it (it then exits 0
  // quietly, as OTP's does): try another.
  for (int attempt = 0; attempt < 5 && pid < 0; ++attempt) {
    port = wire::freePort();
    std::vector<std::string> argv_s{"/usr/bin/prlimit",
                                    "--nofile=" + nofile + ":" + nofile,
                                    "--",
                                    args.epmdx,
                                    "-port",
                                    std::to_string(port),
                                    "-address",
                                    "127.0.0.1",
                                    "--grpc-listen=off",
                                    "--http-listen=off"};
    std::vector<char*> cargv;
    for (auto& s : argv_s) {
      cargv.push_back(s.data());
    }
    cargv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (posix_spawn(&pid, cargv[0], &fa, nullptr, cargv.data(), environ) != 0) {
      pid = -1;
    }
    posix_spawn_file_actions_destroy(&fa);
    if (pid > 0 && (!wire::waitForPort(port, std::chrono::seconds(10)) ||
                    waitpid(pid, nullptr, WNOHANG) == pid)) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      pid = -1;
    }
  }
  if (pid < 0) {
    std::fprintf(stderr, "cannot start %s\n", args.epmdx.c_str());
    return 1;
  }

  // The flood: connections that never send a byte, more than the daemon's limit.
  const auto t_flood = Clock::now();
  std::vector<int> idle;
  for (int i = 0; i < args.idle; ++i) {
    const int fd = wire::connectLoopbackFrom(port, static_cast<unsigned>(i));
    if (fd >= 0) {
      idle.push_back(fd);
    }
  }
  const double flood_ms = msSince(t_flood);

  // A node registers, then looks itself up 20 times (a fresh connection each).
  const auto t_reg = Clock::now();
  const int reg = wire::connectLoopbackFrom(port, 1);
  wire::sendAll(reg, wire::alive2Request("victim", 4242));
  const std::string reply = wire::readN(reg, 6, std::chrono::seconds(10));
  const double reg_ms = msSince(t_reg);
  const auto alive2 = wire::parseAlive2Reply(reply);
  const bool registered = alive2 && alive2->result == 0;
  std::vector<double> lookups;
  int answered = 0;
  for (int i = 0; i < 20; ++i) {
    const auto t = Clock::now();
    const int fd = wire::connectLoopbackFrom(port, 2 + static_cast<unsigned>(i));
    wire::sendAll(fd, wire::portPlease2Request("victim"));
    const std::string r = wire::readN(fd, 2, std::chrono::seconds(2));
    lookups.push_back(msSince(t));
    answered += r.size() >= 2 && r[0] == 119 && r[1] == 0 ? 1 : 0;
    close(fd);
  }
  std::sort(lookups.begin(), lookups.end());

  // The rest of the window, for the log's rate.
  const auto window = std::chrono::duration<double>(args.seconds);
  while (Clock::now() - t_flood < window) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // The measurement window.
  }
  const double window_s = std::chrono::duration<double>(Clock::now() - t_flood).count();
  size_t closed = 0;
  for (int fd : idle) {
    pollfd p{fd, POLLIN, 0};
    closed += poll(&p, 1, 0) > 0 ? 1 : 0;
  }
  const size_t log_lines =
      countLines(log_path, {"accept failed", "short of descriptors", "Too many open files"});

  std::printf("epmd overload: %d idle connections against a %d-descriptor epmdx (%s)\n", args.idle,
              args.limit, args.epmdx.c_str());
  std::printf("  idle connections opened          %zu in %.0f ms\n", idle.size(), flood_ms);
  std::printf("  registration answered            %s in %.1f ms\n", registered ? "yes" : "NO",
              reg_ms);
  std::printf("  lookups answered                 %d of 20, median %.1f ms, max %.1f ms\n",
              answered, lookups[lookups.size() / 2], lookups.back());
  std::printf("  idle connections closed by epmdx %zu within %.1f s\n", closed, window_s);
  std::printf("  log lines about it               %zu in %.1f s\n", log_lines, window_s);
  for (int fd : idle) {
    close(fd);
  }
  close(reg);
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  unlink(log_path.c_str());
  return 0;
}
