#include "tests/support/tcp_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/support/net.h"

namespace epmdx::testing {

TcpProxy::TcpProxy(uint16_t target_port) : target_(target_port) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
  listen(listen_fd_, 64);
  socklen_t len = sizeof a;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  thread_ = std::thread([this] { run(); });
}

TcpProxy::~TcpProxy() {
  stop_ = true;
  thread_.join();
  cutAll();
  close(listen_fd_);
}

void TcpProxy::cutAll() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [a, b] : pairs_) {
    shutdown(a, SHUT_RDWR);
    shutdown(b, SHUT_RDWR);
  }
}

void TcpProxy::run() {
  char buf[65536];
  while (!stop_) {
    std::vector<pollfd> fds{{listen_fd_, POLLIN, 0}};
    std::vector<std::pair<int, int>> snapshot;
    {
      std::lock_guard<std::mutex> lock(mu_);
      snapshot = pairs_;
    }
    for (auto& [a, b] : snapshot) {
      fds.push_back({a, POLLIN, 0});
      fds.push_back({b, static_cast<short>(paused_ ? 0 : POLLIN), 0});
    }
    if (poll(fds.data(), fds.size(), 50) <= 0) {
      continue;
    }
    if (fds[0].revents & POLLIN) {
      const int c = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      const int t = connectTo("127.0.0.1", target_);
      if (c >= 0 && t >= 0) {
        std::lock_guard<std::mutex> lock(mu_);
        pairs_.emplace_back(c, t);
        ++seen_;
      } else {
        close(c);
        close(t);
      }
    }
    std::vector<std::pair<int, int>> dead;
    for (size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].revents == 0) {
        continue;
      }
      const auto& pair = snapshot[(i - 1) / 2];
      const int from = fds[i].fd;
      const int to = from == pair.first ? pair.second : pair.first;
      const ssize_t n = recv(from, buf, sizeof buf, 0);
      if (n <= 0 || !sendAll(to, std::string(buf, static_cast<size_t>(n)))) {
        dead.push_back(pair);
      }
    }
    if (!dead.empty()) {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& d : dead) {
        for (auto it = pairs_.begin(); it != pairs_.end(); ++it) {
          if (*it == d) {
            close(it->first);
            close(it->second);
            pairs_.erase(it);
            break;
          }
        }
      }
    }
  }
}

}  // namespace epmdx::testing
