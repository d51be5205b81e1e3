#include "tests/support/raw_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>

namespace epmdx::testing {
namespace {

using Clock = std::chrono::steady_clock;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

std::string RawResponse::header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) {
      return v;
    }
  }
  return {};
}

std::string httpRequest(const std::string& method, const std::string& target, uint16_t port,
                        const std::vector<std::pair<std::string, std::string>>& headers,
                        const std::string& body) {
  std::string out = method + " " + target + " HTTP/1.1\r\n";
  bool host = false;
  for (const auto& [k, v] : headers) {
    host = host || lower(k) == "host";
  }
  if (!host) {
    out += "Host: 127.0.0.1:" + std::to_string(port) + "\r\n";
  }
  for (const auto& [k, v] : headers) {
    out += k + ": " + v + "\r\n";
  }
  if (!body.empty()) {
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  return out + "\r\n" + body;
}

RawHttp::RawHttp(uint16_t port, int rcvbuf) {
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    return;
  }
  if (rcvbuf > 0) {
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

RawHttp::~RawHttp() {
  close();
}

void RawHttp::close() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

bool RawHttp::send(const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) {
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
}

long RawHttp::fill(Clock::time_point deadline) {
  if (eof_ || fd_ < 0) {
    return 0;
  }
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      return -1;
    }
    pollfd p{fd_, POLLIN, 0};
    const int r = poll(&p, 1, static_cast<int>(left.count()));
    if (r <= 0) {
      continue;  // Timeout is checked above; EINTR retries.
    }
    char chunk[65536];
    const ssize_t n = recv(fd_, chunk, sizeof chunk, 0);
    if (n > 0) {
      buf_.append(chunk, static_cast<size_t>(n));
      return n;
    }
    eof_ = true;  // Orderly close or reset: either way nothing more will come.
    return 0;
  }
}

bool RawHttp::readUntil(const std::string& needle, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (buf_.find(needle) == std::string::npos) {
    if (fill(deadline) <= 0) {
      return false;
    }
  }
  return true;
}

bool RawHttp::waitClosed(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const long n = fill(deadline);
    if (n == 0) {
      return true;
    }
    if (n < 0) {
      return false;
    }
  }
}

std::optional<RawResponse> RawHttp::read(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  size_t end;
  while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
    if (fill(deadline) <= 0) {
      return std::nullopt;
    }
  }
  RawResponse res;
  const std::string head = buf_.substr(0, end);
  size_t line_end = head.find("\r\n");
  const std::string status_line = head.substr(0, line_end);
  if (status_line.rfind("HTTP/1.", 0) != 0 || status_line.size() < 12) {
    return std::nullopt;
  }
  res.status = std::atoi(status_line.c_str() + 9);
  while (line_end != std::string::npos) {
    const size_t start = line_end + 2;
    line_end = head.find("\r\n", start);
    const std::string line =
        head.substr(start, line_end == std::string::npos ? std::string::npos : line_end - start);
    const size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      res.headers.emplace_back(lower(line.substr(0, colon)), value);
    }
  }
  const size_t body_start = end + 4;
  const std::string length = res.header("content-length");
  if (!length.empty()) {
    const size_t want = std::stoul(length);
    while (buf_.size() < body_start + want) {
      if (fill(deadline) <= 0) {
        return std::nullopt;
      }
    }
    res.body = buf_.substr(body_start, want);
    buf_.erase(0, body_start + want);
    return res;
  }
  // No length: the body runs to the close (an event stream).
  while (fill(deadline) > 0) {
  }
  res.body = buf_.substr(body_start);
  buf_.clear();
  return res;
}

std::string metricValue(uint16_t port, const std::string& series) {
  RawHttp c(port);
  c.send(httpRequest("GET", "/metrics", port));
  auto res = c.read();
  if (!res) {
    return {};
  }
  const auto at = res->body.find("\n" + series + " ");
  if (at == std::string::npos) {
    return {};
  }
  const auto start = at + series.size() + 2;
  return res->body.substr(start, res->body.find('\n', start) - start);
}

}  // namespace epmdx::testing
