// One SSE watch (http::SseStream) on a real loopback TCP connection, its event loop run by the
// test: the response head and `retry:` line, the initial state, a change frame with the shared
// bytes of EncodedEvents and the revision as its id, a progress frame on an idle stream, the
// cluster filter, and the `resync` frame and close when the watch fell behind the history.

#include "server/http/sse_stream.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "tests/support/test_nodes.h"
#include "tests/wire/wire.h"

namespace epmdx::http {
namespace {

using namespace std::chrono_literals;

class SseStreamTest : public ::testing::Test {
 protected:
  SseStreamTest()
      : registry_(options()),
        service_(registry_, tokens_, 4),
        encoded_(service_.clusterNames()),
        acceptor_(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {}
  ~SseStreamTest() override {
    if (client_ >= 0) {
      close(client_);
    }
  }

  static registry::RegistryOptions options() {
    registry::RegistryOptions o;
    o.cluster_names = {"default", "blue"};
    o.history_size = 4;
    o.async_notify = false;
    return o;
  }

  void add(const std::string& name, registry::ClusterId cluster = 0) {
    registry::NodeInfo n = testNode(name, 4300);
    ASSERT_TRUE(registry_.add(n, registry::Origin{"127.0.0.1:7", -1, ""}, {}, cluster).ok());
  }

  /// A stream of a watch with `params`, on a connection whose client end is client_.
  std::shared_ptr<SseStream> open(const api::WatchParams& params) {
    client_ = wire::connectTo("127.0.0.1", acceptor_.local_endpoint().port());
    EXPECT_GE(client_, 0);
    fcntl(client_, F_SETFL, O_NONBLOCK);
    tcp::socket server = acceptor_.accept();
    auto opened = service_.openWatch(api::Surface::Sse, params, {});
    EXPECT_TRUE(opened.ok());
    return std::make_shared<SseStream>(beast::tcp_stream(std::move(server)),
                                       std::move(opened.value()), 1h, service_, encoded_,
                                       [this](SseStream*) { closed_ = true; });
  }

  /// Runs the event loop and reads what the client got, until `text` is in it (true) or
  /// the deadline. Sets eof_ when the server closed.
  bool receive(const std::string& text) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (received_.find(text) == std::string::npos &&
           std::chrono::steady_clock::now() < deadline) {
      ioc_.poll();
      ioc_.restart();
      char buf[16384];
      const ssize_t n = recv(client_, buf, sizeof buf, 0);
      if (n > 0) {
        received_.append(buf, static_cast<size_t>(n));
      } else if (n == 0) {
        eof_ = true;
        return received_.find(text) != std::string::npos;
      }
    }
    return received_.find(text) != std::string::npos;
  }

  /// The newest event of the registry.
  registry::Event newest() { return registry_.recentEvents(1).events.at(0); }

  api::TokenStore tokens_;
  registry::Registry registry_;
  api::Service service_;
  api::EncodedEvents encoded_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  int client_ = -1;
  std::string received_;
  bool eof_ = false;
  bool closed_ = false;
};

TEST_F(SseStreamTest, HeadRetryInitialChangeAndProgress) {
  add("a");
  const registry::Revision listed = registry_.revision();
  auto stream = open({.after = std::nullopt, .initial = true, .cluster = "", .source = ""});
  stream->begin();
  ASSERT_TRUE(receive("\n\nevent: initial\nid: " + std::to_string(listed) + "\ndata: {"));
  EXPECT_EQ(received_.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << received_;
  EXPECT_NE(received_.find("Content-Type: text/event-stream\r\n"), std::string::npos);
  EXPECT_NE(received_.find("\r\n\r\nretry: 1000\n\n"), std::string::npos) << "before any frame";
  ASSERT_TRUE(receive("\"initialStateComplete\":true"));
  EXPECT_NE(received_.find("\"name\":\"a\""), std::string::npos) << received_;

  add("b");
  const auto change = encoded_.sseFrame(newest());
  stream->pump();
  ASSERT_TRUE(receive(*change)) << "the shared bytes of the change, as they are";
  EXPECT_EQ(change->rfind("event: change\nid: " + std::to_string(registry_.revision()) + "\n", 0),
            0u);

  const registry::Revision now = registry_.revision();
  stream->tick(std::chrono::steady_clock::now());
  ioc_.poll();
  EXPECT_EQ(received_.find("event: progress"), std::string::npos) << "not idle for 1 h yet";
  stream->tick(std::chrono::steady_clock::now() + 2h);
  ASSERT_TRUE(receive("event: progress\nid: " + std::to_string(now) + "\ndata: {"));
  EXPECT_TRUE(receive("\"revision\":\"" + std::to_string(now) + "\"}\n\n"))
      << "a WatchNodesResponse with the revision only";
  EXPECT_FALSE(eof_);
  stream->end();
  receive("(read until the server closes)");
  EXPECT_TRUE(eof_) << "end() closes after the write in flight";
  EXPECT_TRUE(closed_);
}

TEST_F(SseStreamTest, OnlyTheWatchedClustersChanges) {
  auto stream = open({.after = std::nullopt, .initial = false, .cluster = "blue", .source = ""});
  stream->begin();
  ASSERT_TRUE(receive("retry: 1000\n\n"));
  add("a");
  stream->pump();
  add("x", 1);
  stream->pump();
  ASSERT_TRUE(receive("\"name\":\"x\""));
  EXPECT_EQ(received_.find("\"name\":\"a\""), std::string::npos) << received_;
}

TEST_F(SseStreamTest, FellBehindIsAResyncFrameThenTheEnd) {
  auto stream = open({.after = std::nullopt, .initial = false, .cluster = "", .source = ""});
  const registry::Revision delivered = registry_.revision();
  stream->begin();
  ASSERT_TRUE(receive("retry: 1000\n\n"));
  for (int i = 0; i < 10; ++i) {  // The history keeps 4.
    add("n" + std::to_string(i));
  }
  stream->pump();
  ASSERT_TRUE(receive("event: resync\nid: " + std::to_string(registry_.revision()) + "\ndata: "));
  EXPECT_NE(received_.find("\"status\":\"OUT_OF_RANGE\""), std::string::npos) << received_;
  EXPECT_NE(
      received_.find("changes after revision " + std::to_string(delivered) + " are no longer kept"),
      std::string::npos)
      << received_;
  receive("(read until the server closes)");
  EXPECT_TRUE(eof_) << "the stream ends after the resync frame";
  EXPECT_TRUE(closed_);
  EXPECT_EQ(service_.cut(api::Surface::Sse), 1u);
  EXPECT_EQ(service_.watchers(api::Surface::Sse), 0u) << "its slot is free";
}

}  // namespace
}  // namespace epmdx::http
