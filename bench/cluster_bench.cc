// Clusters and access policies on the lookup path, side by side in one run:
//   - lookups/s on the default cluster's port vs a second cluster's port of the same daemon
//     (--cluster), the same names held in each: a cluster costs nothing per lookup;
//   - lookups/s of a daemon with no access policy vs one whose --lookups-from rule is checked
//     on every lookup (and admits the loopback clients): the policy costs nothing either.
// Each figure is the median of rounds that alternate between the two sides.
//
//   cluster_bench [--epmdx=PATH] [--seconds=N] [--rounds=N] [--clients=1,4,16] [--held=N]

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_util.h"

using namespace epmdx::bench;

namespace {

std::vector<int> parseList(const std::string& s) {
  std::vector<int> out;
  size_t start = 0;
  while (start < s.size()) {
    const size_t comma = s.find(',', start);
    out.push_back(std::atoi(s.substr(start, comma - start).c_str()));
    if (comma == std::string::npos) {
      break;
    }
    start = comma + 1;
  }
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

/// Alternates rounds between two ports and prints one line per client count.
void compare(const char* title, const char* a_name, uint16_t a, const char* b_name, uint16_t b,
             const std::vector<int>& clients, int held, int rounds, double seconds) {
  std::printf("\n%s\n%-8s %12s %12s %9s\n", title, "clients", a_name, b_name, "ratio");
  for (int c : clients) {
    std::vector<double> ra, rb;
    uint64_t errors = 0;
    for (int r = 0; r < rounds; ++r) {
      const Point pa = measure(a, c, held, seconds);
      const Point pb = measure(b, c, held, seconds);
      ra.push_back(pa.rate);
      rb.push_back(pb.rate);
      errors += pa.errors + pb.errors;
    }
    const double ma = median(ra), mb = median(rb);
    std::printf("%-8d %12.0f %12.0f %8.0f%%", c, ma, mb, 100 * mb / ma);
    if (errors > 0) {
      std::printf("  (failed lookups: %lu)", static_cast<unsigned long>(errors));
    }
    std::printf("\n");
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string epmdx = "build/epmdx";
  double seconds = 2;
  int rounds = 3;
  int held = 1000;
  std::vector<int> clients{1, 4, 16};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const std::string v = a.substr(a.find('=') + 1);
    if (a.rfind("--epmdx=", 0) == 0) {
      epmdx = v;
    } else if (a.rfind("--seconds=", 0) == 0) {
      seconds = std::atof(v.c_str());
    } else if (a.rfind("--rounds=", 0) == 0) {
      rounds = std::max(1, std::atoi(v.c_str()));
    } else if (a.rfind("--clients=", 0) == 0) {
      clients = parseList(v);
    } else if (a.rfind("--held=", 0) == 0) {
      held = std::atoi(v.c_str());
    } else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  prepareProcess();

  // One daemon, two clusters, the same names held in each.
  const uint16_t first = wire::freePort(), second = wire::freePort();
  Server clustered({epmdx, "-port", std::to_string(first),
                    "--cluster=second=" + std::to_string(second), "--grpc-listen=off",
                    "--http-listen=off"});
  // Two daemons: no policy, and a lookups rule checked on every lookup.
  const uint16_t open = wire::freePort(), guarded = wire::freePort();
  Server open_daemon(
      {epmdx, "-port", std::to_string(open), "--grpc-listen=off", "--http-listen=off"});
  Server guarded_daemon({epmdx, "-port", std::to_string(guarded), "--grpc-listen=off",
                         "--http-listen=off", "--lookups-from=10.0.0.0/8,fd00::/8,loopback",
                         "--names-from=loopback"});
  for (uint16_t p : {first, second, open, guarded}) {
    if (!wire::waitForPort(p, std::chrono::seconds(10))) {
      std::fprintf(stderr, "epmdx did not start on %u\n", p);
      return 1;
    }
  }
  std::vector<std::vector<int>> held_fds;
  for (uint16_t p : {first, second, open, guarded}) {
    held_fds.push_back(registerNames(p, held));
    if (static_cast<int>(held_fds.back().size()) != held) {
      std::fprintf(stderr, "could not register %d names on %u\n", held, p);
      return 1;
    }
  }
  std::printf(
      "cluster and policy benchmark: fresh TCP connection per PORT_PLEASE2, %d names held on "
      "each port, %.1f s a point, median of %d rounds\n",
      held, seconds, rounds);
  compare("lookups/s: the default cluster's port vs a second cluster's port of one daemon",
          "default/s", first, "second/s", second, clients, held, rounds, seconds);
  compare("lookups/s: no access policy vs --lookups-from=10.0.0.0/8,fd00::/8,loopback", "open/s",
          open, "policy/s", guarded, clients, held, rounds, seconds);
  for (auto& fds : held_fds) {
    for (int fd : fds) {
      close(fd);
    }
  }
  return 0;
}
