// Attacks on the HTTP input path of the real epmdx binary:
// oversized and over-many headers, oversized bodies, a chunked body that carries the
// eviction precondition, pipelined requests, and the keep-alive latency that Nagle's
// algorithm and delayed ACKs used to add.

#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "epmdx/v1/registry.pb.h"
#include "tests/support/epmdx_daemon.h"
#include "tests/support/net.h"
#include "tests/support/raw_http.h"

namespace epmdx::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class HttpLimitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon_ = std::make_unique<EpmdxDaemon>();
    ASSERT_TRUE(daemon_->ready()) << daemon_->process().stderrText();
  }
  uint16_t port() const { return daemon_->httpPort(); }

  /// Registers `name` on the epmd port; the returned socket holds the registration.
  int registerNode(const std::string& name, uint16_t node_port = 9100) {
    const int fd = connectTo("127.0.0.1", daemon_->epmdPort());
    EXPECT_TRUE(sendAll(fd, frame(alive2Body(name, node_port))));
    const std::string reply = readN(fd, 6, 2000ms);
    EXPECT_EQ(reply.substr(0, 2), std::string("v\0", 2));
    return fd;
  }

  /// The registration id of `name`, from GET /v1/nodes/NAME.
  std::string registrationId(const std::string& name) {
    RawHttp c(port());
    c.send(httpRequest("GET", "/v1/nodes/" + name, port()));
    auto res = c.read();
    if (!res || res->status != 200) {
      return {};
    }
    v1::Node node;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(res->body, &node).ok()) << res->body;
    return std::to_string(node.registration_id());
  }

  int getStatus(const std::string& target) {
    RawHttp c(port());
    c.send(httpRequest("GET", target, port()));
    auto res = c.read();
    return res ? res->status : 0;
  }

  std::unique_ptr<EpmdxDaemon> daemon_;
};

/// Sends `request` (megabytes, maybe) while reading what the server answers, as a client
/// that does not wait for its upload to finish would: the server may answer and close
/// before it has read everything. Returns the bytes received and whether the server closed.
struct Exchange {
  std::string received;
  bool closed = false;
};

Exchange sendWhileReading(uint16_t port, const std::string& request,
                          std::chrono::milliseconds timeout) {
  Exchange x;
  const int fd = connectTo("127.0.0.1", port);
  if (fd < 0) {
    return x;
  }
  size_t sent = 0;
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    pollfd p{fd, static_cast<short>(POLLIN | (sent < request.size() ? POLLOUT : 0)), 0};
    if (poll(&p, 1, 50) <= 0) {
      continue;
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[65536];
      const ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        x.received.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
        x.closed = true;
        break;
      }
    }
    if ((p.revents & POLLOUT) && sent < request.size()) {
      const ssize_t n =
          ::send(fd, request.data() + sent, std::min<size_t>(request.size() - sent, 1 << 16),
                 MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        sent += static_cast<size_t>(n);
      } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
        sent = request.size();  // The server stopped reading (EPIPE/reset): read what it said.
      }
    }
  }
  close(fd);
  return x;
}

int statusOf(const std::string& response) {
  return response.rfind("HTTP/1.1 ", 0) == 0 ? std::atoi(response.c_str() + 9) : 0;
}

std::string bodyOf(const std::string& response) {
  const auto end = response.find("\r\n\r\n");
  return end == std::string::npos ? std::string() : response.substr(end + 4);
}

void expectErrorBody(const std::string& body, int status) {
  v1::ErrorBody e;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(body, &e).ok()) << body;
  EXPECT_EQ(e.code(), status) << body;
  EXPECT_FALSE(e.status().empty()) << body;
  EXPECT_FALSE(e.message().empty()) << body;
}

std::string manyHeaders(uint16_t port, int count) {
  std::string req = "GET /v1/nodes HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) + "\r\n";
  for (int i = 0; i < count; ++i) {
    req += "X-H" + std::to_string(i) + ": v\r\n";
  }
  return req + "\r\n";
}

std::string hugeHeader(uint16_t port, size_t bytes) {
  return "GET /v1/nodes HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
         "\r\nX-Big: " + std::string(bytes, 'a') + "\r\n\r\n";
}

TEST_F(HttpLimitsTest, ThousandHeadersGet431AndClose) {
  const auto x = sendWhileReading(port(), manyHeaders(port(), 1000), 10s);
  EXPECT_EQ(statusOf(x.received), 431) << x.received.substr(0, 200);
  EXPECT_TRUE(x.closed);
  expectErrorBody(bodyOf(x.received), 431);
  // The daemon still serves.
  EXPECT_EQ(getStatus("/livez"), 200);
}

TEST_F(HttpLimitsTest, SixMegabyteHeaderGets431AndClose) {
  const auto x = sendWhileReading(port(), hugeHeader(port(), 6 << 20), 10s);
  EXPECT_EQ(statusOf(x.received), 431) << x.received.substr(0, 200);
  EXPECT_TRUE(x.closed);
  expectErrorBody(bodyOf(x.received), 431);
  EXPECT_EQ(getStatus("/livez"), 200);
}

TEST_F(HttpLimitsTest, TwentyHugeRequestsLeaveRssFlat) {
  // Warm up the paths once so that first-use allocations are not counted.
  sendWhileReading(port(), hugeHeader(port(), 6 << 20), 10s);
  sendWhileReading(port(), manyHeaders(port(), 1000), 10s);
  const long before = daemon_->rssKib();
  ASSERT_GT(before, 0);
  int refused = 0;
  for (int i = 0; i < 20; ++i) {
    const auto x = sendWhileReading(
        port(), i % 2 ? manyHeaders(port(), 1000) : hugeHeader(port(), 6 << 20), 10s);
    refused += statusOf(x.received) == 431 && x.closed ? 1 : 0;
  }
  const long after = daemon_->rssKib();
  EXPECT_EQ(refused, 20);
  // The old server kept every header: 20 x 6 MB took it to ~400 MB, never given back.
  EXPECT_LT(after - before, 8 * 1024) << "RSS " << before << " KiB -> " << after << " KiB";
  RecordProperty("rss_before_kib", std::to_string(before));
  RecordProperty("rss_after_kib", std::to_string(after));
  EXPECT_EQ(getStatus("/livez"), 200);
}

TEST_F(HttpLimitsTest, BodyOver64KibGets413) {
  const int holder = registerNode("big");
  const std::string body = "{\"reason\":\"" + std::string(70 * 1024, 'x') + "\"}";
  const auto x = sendWhileReading(
      port(),
      httpRequest("DELETE", "/v1/nodes/big", port(),
                  {{"Authorization", std::string("Bearer ") + EpmdxDaemon::kAdminToken}}, body),
      10s);
  EXPECT_EQ(statusOf(x.received), 413) << x.received.substr(0, 300);
  EXPECT_TRUE(x.closed);
  expectErrorBody(bodyOf(x.received), 413);
  // The same size in chunks.
  std::string chunked =
      "DELETE /v1/nodes/big HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
      std::string(EpmdxDaemon::kAdminToken) + "\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 70; ++i) {
    chunked += "400\r\n" + std::string(1024, 'x') + "\r\n";
  }
  chunked += "0\r\n\r\n";
  const auto y = sendWhileReading(port(), chunked, 10s);
  EXPECT_EQ(statusOf(y.received), 413) << y.received.substr(0, 300);
  EXPECT_TRUE(y.closed);
  // Neither reached the eviction.
  EXPECT_EQ(getStatus("/v1/nodes/big"), 200);
  close(holder);
}

TEST_F(HttpLimitsTest, ChunkedDeleteHonoursThePrecondition) {
  const int holder = registerNode("chunky");
  const std::string id = registrationId("chunky");
  ASSERT_FALSE(id.empty());
  auto chunkedDelete = [&](const std::string& json) {
    char size[16];
    std::snprintf(size, sizeof size, "%zx", json.size());
    return "DELETE /v1/nodes/chunky HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
           std::string(EpmdxDaemon::kAdminToken) +
           "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + size +
           "\r\n" + json + "\r\n0\r\n\r\n";
  };
  // Wrong registration id: 409, in chunks as with Content-Length, and the node stays.
  for (const bool chunked : {true, false}) {
    SCOPED_TRACE(chunked ? "chunked" : "content-length");
    const std::string json = "{\"registrationId\":\"99999\"}";
    RawHttp c(port());
    ASSERT_TRUE(c.send(chunked ? chunkedDelete(json)
                               : httpRequest("DELETE", "/v1/nodes/chunky", port(),
                                             {{"Authorization",
                                               std::string("Bearer ") + EpmdxDaemon::kAdminToken}},
                                             json)));
    auto res = c.read();
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 409) << res->body;
    expectErrorBody(res->body, 409);
    // The body was consumed, not parsed as a next request: the connection still serves.
    ASSERT_TRUE(c.send(httpRequest("GET", "/v1/nodes/chunky", port())));
    auto again = c.read();
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 200);
    EXPECT_EQ(c.buffered(), "");
    // The registration is intact: its epmd connection is still open.
    pollfd p{holder, POLLIN, 0};
    EXPECT_EQ(poll(&p, 1, 0), 0) << "the holder's connection was closed";
  }
  // The right id in chunks evicts: the body is really read.
  RawHttp c(port());
  ASSERT_TRUE(c.send(chunkedDelete("{\"registrationId\":\"" + id + "\",\"reason\":\"chunked\"}")));
  auto res = c.read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  EXPECT_TRUE(readUntilClose(holder, 2000ms).closed);
  EXPECT_EQ(getStatus("/v1/nodes/chunky"), 404);
  close(holder);
}

TEST_F(HttpLimitsTest, PipelinedRequestsAreAnsweredInOrder) {
  const int holder = registerNode("piped");
  RawHttp c(port());
  // Three requests in one segment, each with a different answer.
  ASSERT_TRUE(c.send(httpRequest("GET", "/v1/nodes/piped", port()) +
                     httpRequest("GET", "/v1/nodes/absent", port()) +
                     httpRequest("GET", "/livez", port())));
  auto first = c.read();
  auto second = c.read();
  auto third = c.read();
  ASSERT_TRUE(first && second && third);
  EXPECT_EQ(first->status, 200);
  EXPECT_NE(first->body.find("\"piped\""), std::string::npos) << first->body;
  EXPECT_EQ(second->status, 404);
  EXPECT_NE(second->body.find("absent"), std::string::npos) << second->body;
  EXPECT_EQ(third->status, 200);
  EXPECT_EQ(third->body, "ok\n");
  close(holder);
}

TEST_F(HttpLimitsTest, KeepAliveRequestsAreNotDelayedByNagle) {
  std::vector<int> holders;
  for (int i = 0; i < 20; ++i) {
    holders.push_back(registerNode("ka" + std::to_string(i), static_cast<uint16_t>(9200 + i)));
  }
  RawHttp c(port());
  std::vector<double> ms;
  for (int i = 0; i < 20; ++i) {
    const auto t0 = Clock::now();
    ASSERT_TRUE(c.send(httpRequest("GET", "/v1/nodes", port())));
    auto res = c.read();
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200);
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  std::string all;
  for (double m : ms) {
    all += std::to_string(m).substr(0, 5) + " ";
  }
  // Nagle behind a delayed ACK made every request after the first take ~40-44 ms. A loaded
  // machine may stall any one request; the median may not.
  EXPECT_LT(sorted[sorted.size() / 2], 10.0) << "ms per request: " << all;
  EXPECT_LE(std::count_if(ms.begin(), ms.end(), [](double m) { return m >= 40; }), 2)
      << "ms per request: " << all;
  for (int fd : holders) {
    close(fd);
  }
}

TEST_F(HttpLimitsTest, AmbiguousFramingIsRefusedAndClosed) {
  // Request smuggling: what a proxy in front and epmdx would each take as the next request
  // must never differ. Every ambiguous framing is a 400 and the end of the connection.
  const std::string h = "Host: 127.0.0.1\r\n";
  const std::string smuggled = "GET /v1/nodes/smuggled HTTP/1.1\r\n" + h + "\r\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"Content-Length and Transfer-Encoding",
       "GET /livez HTTP/1.1\r\n" + h +
           "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled},
      {"two different Content-Lengths", "GET /livez HTTP/1.1\r\n" + h +
                                            "Content-Length: 0\r\nContent-Length: 5\r\n\r\nhello" +
                                            smuggled},
      // RFC 9112 6.3: a request whose Transfer-Encoding does not end in chunked has no
      // knowable length: 400 and close.
      {"Transfer-Encoding without chunked last",
       "GET /livez HTTP/1.1\r\n" + h + "Transfer-Encoding: gzip\r\n\r\n" + smuggled},
      // RFC 9112 3.2: more than one Host is a 400. The Host check reads one of them; a proxy
      // may route on the other.
      {"two Host headers",
       "GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n" + smuggled},
      {"a malformed chunk size", "DELETE /v1/nodes/x HTTP/1.1\r\n" + h +
                                     "Transfer-Encoding: chunked\r\n\r\nzz\r\n" + smuggled},
  };
  for (const auto& [what, bytes] : cases) {
    SCOPED_TRACE(what);
    const auto x = sendWhileReading(port(), bytes, 5s);
    EXPECT_EQ(statusOf(x.received), 400) << x.received.substr(0, 300);
    EXPECT_TRUE(x.closed);
    EXPECT_EQ(x.received.find("smuggled"), std::string::npos) << x.received;
  }
}

}  // namespace
}  // namespace epmdx::testing
