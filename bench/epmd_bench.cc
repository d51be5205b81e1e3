// Side-by-side load test of OTP's epmd and epmdx (and of this machine's floor: a minimal
// accept-reply-close server). Each lookup is a fresh TCP connection carrying one
// PORT_PLEASE2_REQ, read until the server closes, as the Erlang VM does.
//
//   epmd_bench [--otp=PATH] [--epmdx=PATH] [--seconds=N] [--rounds=N]
//              [--clients=1,4,16] [--held=10,1000,15000]
//
// Prints lookups/s for each daemon, client count and number of held registrations, the
// ratios to OTP and to the floor, and each daemon's RSS per registration.

#include "bench/bench_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

using namespace epmdx::bench;

// The floor: accept, read one request, write a fixed PORT2 "not found", close. One thread,
// blocking, nothing else: the least any epmd can do per lookup on this machine.
[[noreturn]] void runFloorServer(uint16_t port) {
  const int ls = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  if (bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(ls, 4096) != 0) {
    std::exit(1);
  }
  char buf[3060];
  for (;;) {
    const int c = accept(ls, nullptr, nullptr);
    if (c < 0) {
      continue;
    }
    if (read(c, buf, sizeof buf) > 0) {
      (void)!write(c, "w\1", 2);
    }
    close(c);
  }
}

std::vector<int> parseList(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    out.push_back(std::atoi(item.c_str()));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string otp = "/usr/bin/epmd";
  std::string epmdx = "build/epmdx";
  double seconds = 2;
  int rounds = 3;
  std::vector<int> clients{1, 4, 16};
  std::vector<int> helds{10, 1000, 15000};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto val = [&a]() { return a.substr(a.find('=') + 1); };
    if (a.rfind("--otp=", 0) == 0) {
      otp = val();
    } else if (a.rfind("--epmdx=", 0) == 0) {
      epmdx = val();
    } else if (a.rfind("--seconds=", 0) == 0) {
      seconds = std::atof(val().c_str());
    } else if (a.rfind("--rounds=", 0) == 0) {
      rounds = std::max(1, std::atoi(val().c_str()));
    } else if (a.rfind("--clients=", 0) == 0) {
      clients = parseList(val());
    } else if (a.rfind("--held=", 0) == 0) {
      helds = parseList(val());
    } else if (a.rfind("--floor-server=", 0) == 0) {
      runFloorServer(static_cast<uint16_t>(std::atoi(val().c_str())));
    } else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  prepareProcess();

  // Every daemon runs for the whole benchmark; the points are measured in rounds that
  // alternate between them, and each figure is the median of its rounds, so that drift
  // on a shared machine hits all of them alike.
  const uint16_t floor_port = wire::freePort();
  Server floor({argv[0], "--floor-server=" + std::to_string(floor_port)});
  if (!wire::waitForPort(floor_port, std::chrono::seconds(10))) {
    std::fprintf(stderr, "the floor server did not start\n");
    return 1;
  }
  std::printf(
      "epmd lookup benchmark: fresh TCP connection per PORT_PLEASE2, %.1f s a point, "
      "median of %d rounds\n\n",
      seconds, rounds);
  std::printf("%-7s %-7s %10s %10s %10s %8s %10s %9s\n", "held", "clients", "floor/s", "OTP/s",
              "epmdx/s", "x OTP", "OTP/floor", "x/floor");
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
  };

  for (int held : helds) {
    struct Daemon {
      std::unique_ptr<Server> server;
      uint16_t port = 0;
      std::vector<int> fds;
      long rss_per_reg = -1;
      bool full = false;
    } d[2];
    for (int which = 0; which < 2; ++which) {
      d[which].port = wire::freePort();
      std::vector<std::string> cmd{which == 0 ? otp : epmdx, "-port",
                                   std::to_string(d[which].port)};
      if (which == 1) {
        cmd.push_back("--grpc-listen=off");
        cmd.push_back("--http-listen=off");
      }
      d[which].server = std::make_unique<Server>(cmd);
      if (!wire::waitForPort(d[which].port, std::chrono::seconds(10))) {
        std::fprintf(stderr, "%s did not start\n", cmd[0].c_str());
        return 1;
      }
      const long rss0 = rssKib(d[which].server->pid());
      d[which].fds = registerNames(d[which].port, held);
      d[which].full = static_cast<int>(d[which].fds.size()) == held;
      const long rss1 = rssKib(d[which].server->pid());
      if (d[which].full && held > 0) {
        d[which].rss_per_reg = (rss1 - rss0) * 1024 / held;
      }
      if (!d[which].full) {
        for (int fd : d[which].fds) {
          close(fd);
        }
        d[which].fds.clear();
        d[which].server.reset();  // Cannot hold that many (OTP's select() limit).
      }
    }
    for (int c : clients) {
      std::vector<double> f, o, x;
      uint64_t errors[2] = {0, 0};
      for (int r = 0; r < rounds; ++r) {
        f.push_back(measure(floor_port, c, 0, seconds).rate);
        for (int which = 0; which < 2; ++which) {
          if (!d[which].full) {
            continue;
          }
          const Point p = measure(d[which].port, c, held, seconds);
          (which == 0 ? o : x).push_back(p.rate);
          errors[which] += p.errors;
        }
      }
      const double fm = median(f), om = median(o), xm = median(x);
      char otp_col[32], ratio[32], otp_floor[32];
      if (d[0].full) {
        std::snprintf(otp_col, sizeof otp_col, "%.0f", om);
        std::snprintf(ratio, sizeof ratio, "%.2f", xm / om);
        std::snprintf(otp_floor, sizeof otp_floor, "%.0f%%", 100 * om / fm);
      } else {
        std::snprintf(otp_col, sizeof otp_col, "n/a");
        std::snprintf(ratio, sizeof ratio, "-");
        std::snprintf(otp_floor, sizeof otp_floor, "-");
      }
      std::printf("%-7d %-7d %10.0f %10s %10.0f %8s %10s %8.0f%%", held, c, fm, otp_col, xm, ratio,
                  otp_floor, 100 * xm / fm);
      if (errors[0] + errors[1] > 0) {
        std::printf("  (failed lookups: OTP %lu, epmdx %lu)", static_cast<unsigned long>(errors[0]),
                    static_cast<unsigned long>(errors[1]));
      }
      std::printf("\n");
    }
    std::printf("%-7d memory per registration: OTP %s, epmdx %ld B\n", held,
                d[0].full ? (std::to_string(d[0].rss_per_reg) + " B").c_str()
                          : "n/a (refused past its select() limit)",
                d[1].rss_per_reg);
    for (auto& dd : d) {
      for (int fd : dd.fds) {
        close(fd);
      }
    }
  }
  std::fflush(stdout);
  return 0;
}
