#pragma once

// A deliberately plain HTTP/1.1 client over one loopback socket: the test writes the exact
// bytes (pipelined, chunked, oversized, hostile) and reads responses one by one, every wait
// bounded by a deadline. Library clients normalise exactly what these tests attack.

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace epmdx::testing {

struct RawResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // Names lower-cased.
  std::string body;
  /// The first value of header `name` (lower case), or "".
  std::string header(const std::string& name) const;
};

/// "METHOD TARGET HTTP/1.1" with Host (unless `headers` has one), the headers, and the body
/// with its Content-Length (when not empty).
std::string httpRequest(const std::string& method, const std::string& target, uint16_t port,
                        const std::vector<std::pair<std::string, std::string>>& headers = {},
                        const std::string& body = "");

/// The value of one Prometheus series (`name{labels}` exactly as printed) from GET /metrics
/// on 127.0.0.1:port, or "" when the daemon does not answer or has no such series.
std::string metricValue(uint16_t port, const std::string& series);

class RawHttp {
 public:
  /// Connects to 127.0.0.1:port; `rcvbuf` > 0 sets SO_RCVBUF first (a small window).
  explicit RawHttp(uint16_t port, int rcvbuf = 0);
  ~RawHttp();
  RawHttp(const RawHttp&) = delete;
  RawHttp& operator=(const RawHttp&) = delete;

  bool connected() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  bool send(const std::string& bytes);
  /// One response (Content-Length body, or up to the close). nullopt on timeout or close.
  std::optional<RawResponse> read(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  /// Reads until `needle` has arrived (kept in the buffer); false on timeout or close.
  bool readUntil(const std::string& needle, std::chrono::milliseconds timeout);
  /// Reads and keeps everything until the peer closes. False if it did not within `timeout`.
  bool waitClosed(std::chrono::milliseconds timeout);
  /// Bytes received and not yet consumed by read().
  std::string& buffered() { return buf_; }
  void close();

 private:
  /// recv() once, waiting at most until `deadline`: >0 bytes, 0 closed, -1 timeout/error.
  long fill(std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
  std::string buf_;
  bool eof_ = false;
};

}  // namespace epmdx::testing
