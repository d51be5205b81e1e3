// A helper for the dead-names integration tests, run as its own process so that it can be
// put in another PID or network namespace, or run as another user:
//   holder_tool lookup LOCAL REMOTE   resolve one connection, daemon side (LOCAL = the
//                                     daemon's address, REMOTE = the node's); prints
//                                     "STATUS PID[,PID...]|- REASON"
//   holder_tool register PORT N       hold N registrations on 127.0.0.1:PORT until killed;
//                                     prints "registered N" once every request is sent

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "server/holder/holder_resolver.h"

namespace {

int lookup(const char* local, const char* remote) {
  using epmdx::holder::Endpoint;
  const auto l = Endpoint::parse(local);
  const auto r = Endpoint::parse(remote);
  if (!l || !r) {
    std::cerr << "bad endpoint\n";
    return 2;
  }
  const auto h = epmdx::holder::HolderResolver().resolveOne({*l, *r});
  std::string pids;
  for (const auto& p : h.processes) {
    pids += (pids.empty() ? "" : ",") + std::to_string(p.pid);
  }
  std::cout << toString(h.status) << " " << (pids.empty() ? "-" : pids) << " " << h.reason
            << std::endl;
  return 0;
}

bool sendAll(int fd, const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) {
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
}

// ALIVE2_REQ framed: length, 'x', port, 'M', protocol 0, versions 6..5, name, no extra.
std::string alive2(const std::string& name, uint16_t port) {
  std::string body;
  auto u16 = [&](uint16_t v) {
    body.push_back(static_cast<char>(v >> 8));
    body.push_back(static_cast<char>(v & 0xff));
  };
  body.push_back('x');
  u16(port);
  body.push_back(77);
  body.push_back(0);
  u16(6);
  u16(5);
  u16(static_cast<uint16_t>(name.size()));
  body += name;
  u16(0);
  std::string framed;
  framed.push_back(static_cast<char>(body.size() >> 8));
  framed.push_back(static_cast<char>(body.size() & 0xff));
  return framed + body;
}

int hold(uint16_t port, int n) {
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < n; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        !sendAll(fd, alive2("holder" + std::to_string(i), static_cast<uint16_t>(20000 + i)))) {
      std::perror("register");
      return 1;
    }
  }
  std::cout << "registered " << n << std::endl;
  for (;;) {
    pause();
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "lookup" && argc == 4) {
    return lookup(argv[2], argv[3]);
  }
  if (mode == "register" && argc == 4) {
    return hold(static_cast<uint16_t>(std::atoi(argv[2])), std::atoi(argv[3]));
  }
  std::cerr << "usage: holder_tool lookup LOCAL REMOTE | holder_tool register PORT N\n";
  return 2;
}
