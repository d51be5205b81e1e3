// Big answers are built off the HTTP event loop (a reviewer's finding): with 15,000 names
// registered and five clients looping on GET /v1/nodes, /readyz stays fast; pipelined
// requests are still answered in order across a big and a small answer; a full worker queue
// answers a JSON 503 with Retry-After at once rather than queueing without bound.

#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "epmdx/v1/registry.pb.h"
#include "server/http/http_server.h"
#include "tests/support/epmdx_daemon.h"
#include "tests/support/net.h"
#include "tests/support/raw_http.h"

namespace epmdx::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kNodes = 15000;

double ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

/// One daemon with 15,000 registrations (raw ALIVE2 sockets) for every test of the suite:
/// registering them takes longer than any test.
class HttpOffloadTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    raiseFileLimit();
    daemon_ = new EpmdxDaemon();
    ASSERT_TRUE(daemon_->ready()) << daemon_->process().stderrText();
    fds_ = new std::vector<int>();
    for (int i = 0; i < kNodes; ++i) {
      const int fd = connectTo("127.0.0.1", daemon_->epmdPort());
      ASSERT_GE(fd, 0) << "connection " << i;
      ASSERT_TRUE(sendAll(fd, frame(alive2Body("node" + std::to_string(i), 10000 + i % 50000))));
      const std::string reply = readN(fd, 6, 5000ms);
      ASSERT_EQ(reply.substr(0, 2), std::string("v\0", 2)) << "registration " << i;
      fds_->push_back(fd);
    }
  }
  static void TearDownTestSuite() {
    for (int fd : *fds_) {
      close(fd);
    }
    delete fds_;
    delete daemon_;
  }
  static uint16_t port() { return daemon_->httpPort(); }

  static EpmdxDaemon* daemon_;
  static std::vector<int>* fds_;
};

EpmdxDaemon* HttpOffloadTest::daemon_ = nullptr;
std::vector<int>* HttpOffloadTest::fds_ = nullptr;

TEST_F(HttpOffloadTest, ReadyzStaysFastWhileFiveClientsListFifteenThousandNodes) {
  // Five keep-alive clients loop on the whole list until the probes are done.
  constexpr int kClients = 5;
  std::atomic<bool> stop{false};
  std::atomic<int> answers{0};
  std::atomic<int> failures{0};
  std::atomic<size_t> body_bytes{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&] {
      RawHttp c(port());
      while (!stop) {
        if (!c.send(httpRequest("GET", "/v1/nodes", port()))) {
          ++failures;
          return;
        }
        auto res = c.read(10s);
        if (!res || res->status != 200) {
          ++failures;
          return;
        }
        body_bytes = res->body.size();
        ++answers;
      }
    });
  }
  // The load is on once every client has had an answer.
  const auto loaded_by = Clock::now() + 60s;
  while (answers < kClients && failures == 0 && Clock::now() < loaded_by) {
    std::this_thread::sleep_for(5ms);  // Polling a counter with a deadline.
  }
  ASSERT_GE(answers.load(), kClients);
  const int answers_before = answers;

  // A Kubernetes-style probe: a new connection each time, connect to last byte; every 5 ms
  // for at least 3 s and until each client has had another list.
  std::vector<double> latencies;
  const auto start = Clock::now();
  for (int i = 0; Clock::now() - start < 30s; ++i) {
    if (Clock::now() - start >= 3s && answers - answers_before >= kClients) {
      break;
    }
    std::this_thread::sleep_for(5ms);  // The probes' pace, not a synchronisation.
    const auto t0 = Clock::now();
    RawHttp probe(port());
    ASSERT_TRUE(probe.send(httpRequest("GET", "/readyz", port())));
    auto res = probe.read(5s);
    const auto t1 = Clock::now();
    ASSERT_TRUE(res) << "probe " << i;
    ASSERT_EQ(res->status, 200);
    latencies.push_back(ms(t1 - t0));
  }
  const int answers_during = answers - answers_before;
  stop = true;
  for (auto& t : clients) {
    t.join();
  }
  EXPECT_EQ(failures.load(), 0);
  // The list was being served all along, not starved by the probes.
  EXPECT_GE(answers_during, kClients);

  std::sort(latencies.begin(), latencies.end());
  const double p50 = latencies[latencies.size() / 2];
  const double p99 = latencies[latencies.size() * 99 / 100];
  const double max = latencies.back();
  std::printf(
      "/readyz with %d clients on GET /v1/nodes (%d nodes, %zu bytes): p50 %.2f ms, "
      "p99 %.2f ms, max %.2f ms over %zu probes; %d lists served meanwhile\n",
      kClients, kNodes, body_bytes.load(), p50, p99, max, latencies.size(), answers_during);
  RecordProperty("readyz_p50_ms", std::to_string(p50));
  RecordProperty("readyz_max_ms", std::to_string(max));
  // Loose enough for a loaded 2-core CI machine; the loop-bound server measured p50 ~700 ms.
  EXPECT_LT(p50, 50.0);
  EXPECT_LT(max, 500.0);
}

TEST_F(HttpOffloadTest, PipelinedRequestsAreAnsweredInOrderAcrossBigAndSmall) {
  RawHttp c(port());
  // One write: a big answer (built on a worker) between small ones (built on the loop).
  ASSERT_TRUE(c.send(httpRequest("GET", "/livez", port()) +
                     httpRequest("GET", "/v1/nodes", port()) +
                     httpRequest("GET", "/readyz?verbose", port()) +
                     httpRequest("GET", "/v1/events?limit=1000", port()) +
                     httpRequest("GET", "/v1/clusters", port())));
  auto livez = c.read(10s);
  auto nodes = c.read(10s);
  auto readyz = c.read(10s);
  auto events = c.read(10s);
  auto clusters = c.read(10s);
  ASSERT_TRUE(livez && nodes && readyz && events && clusters);
  EXPECT_EQ(livez->body, "ok\n");
  ASSERT_EQ(nodes->status, 200);
  v1::ListNodesResponse list;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(nodes->body, &list).ok());
  EXPECT_EQ(list.nodes_size(), kNodes);
  EXPECT_NE(readyz->body.find("readyz check passed"), std::string::npos) << readyz->body;
  ASSERT_EQ(events->status, 200);
  v1::ListEventsResponse ev;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(events->body, &ev).ok());
  EXPECT_EQ(ev.events_size(), 1000);
  EXPECT_NE(clusters->body.find("\"clusters\""), std::string::npos) << clusters->body;
}

TEST_F(HttpOffloadTest, WatchInitialStateIsBuiltOffTheLoopAndComplete) {
  RawHttp c(port());
  ASSERT_TRUE(c.send(httpRequest("GET", "/v1/watch?initial=true", port())));
  ASSERT_TRUE(c.readUntil("\"initialStateComplete\":true", 20s)) << c.buffered().substr(0, 300);
  EXPECT_EQ(c.buffered().rfind("HTTP/1.1 200", 0), 0u);
  // Every node once, in `initial` frames.
  size_t names = 0;
  for (size_t at = 0; (at = c.buffered().find("\"name\":\"node", at)) != std::string::npos; ++at) {
    ++names;
  }
  EXPECT_EQ(names, static_cast<size_t>(kNodes));
}

/// The queue bound, in process (it is not a daemon flag): one worker, no waiting job.
TEST(HttpOffloadQueue, AFullWorkerQueueAnswers503WithRetryAfter) {
  registry::Registry registry(registry::RegistryOptions{});
  for (int i = 0; i < kNodes; ++i) {
    registry::NodeInfo node;
    node.name = "node" + std::to_string(i);
    node.port = static_cast<uint16_t>(10000 + i % 50000);
    node.node_type = 77;
    node.highest_version = 6;
    node.lowest_version = 5;
    ASSERT_TRUE(registry.add(node, {}).ok());
  }
  api::TokenStore tokens;
  tokens.setForTest("t", {"t", true, true});
  api::Service api(registry, tokens, 16);
  http::HttpOptions ho;
  ho.listen = "127.0.0.1:0";
  ho.workers = 1;
  ho.worker_queue = 0;
  http::DaemonStatus st;
  st.epmd_listening = [] { return true; };
  st.draining = [] { return false; };
  http::HttpServer server(api, ho, st);
  ASSERT_FALSE(server.start().has_value());
  const uint16_t port = server.port();

  // Eight lists at once: the worker takes one, nothing may wait, so the others are refused
  // while it builds 15,000 nodes. Rounds until one is refused (the first almost always).
  constexpr int kAtOnce = 8;
  std::vector<std::unique_ptr<RawHttp>> conns;
  for (int i = 0; i < kAtOnce; ++i) {
    conns.push_back(std::make_unique<RawHttp>(port));
  }
  int refused = 0;
  int served = 0;
  for (int round = 0; round < 10 && refused == 0; ++round) {
    for (auto& c : conns) {
      ASSERT_TRUE(c->send(httpRequest("GET", "/v1/nodes", port)));
    }
    for (auto& c : conns) {
      auto res = c->read(10s);
      ASSERT_TRUE(res);
      if (res->status == 503) {
        ++refused;
        EXPECT_EQ(res->header("retry-after"), "1");
        v1::ErrorBody e;
        ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(res->body, &e).ok()) << res->body;
        EXPECT_EQ(e.code(), 503);
        EXPECT_EQ(e.status(), "UNAVAILABLE");
      } else {
        ASSERT_EQ(res->status, 200);
        ++served;
      }
    }
  }
  EXPECT_GE(refused, 1);
  EXPECT_GE(served, 1);
  // A probe is never refused for it, and every refused connection is still open and served
  // once the worker is free.
  RawHttp probe(port);
  ASSERT_TRUE(probe.send(httpRequest("GET", "/readyz", port)));
  auto ready = probe.read(5s);
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  for (auto& c : conns) {
    ASSERT_TRUE(c->send(httpRequest("GET", "/v1/holds", port)));
    auto res = c->read(10s);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200) << res->body;
  }
  server.stop();
}

}  // namespace
}  // namespace epmdx::testing
