// Big answers are built off the HTTP event loop: with 15,000 names
// registered and five clients looping on GET /v1/nodes, /readyz stays fast; pipelined
// requests are still answered in order across a big and a small answer; a full worker queue
// answers a JSON 503 with Retry-After at once rather than queueing without bound.

#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
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

/// What one client does in a loop: false on a failure (it stops then).
using Load = std::function<bool(uint16_t port, RawHttp& keep_alive)>;

struct Probes {
  double p50 = 0;
  double p99 = 0;
  double max = 0;
  size_t count = 0;
  int loads_during = 0;  // Loops the clients completed while the probes ran.
};

/// Five clients run `load` in a loop while /readyz is probed as Kubernetes does: a new
/// connection each time, connect to last byte, every 5 ms for at least 3 s and until each
/// client has completed another loop.
Probes probeReadyzUnder(uint16_t port, const Load& load) {
  constexpr int kClients = 5;
  Probes out;
  std::atomic<bool> stop{false};
  std::atomic<int> loops{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&] {
      RawHttp c(port);
      while (!stop) {
        if (!load(port, c)) {
          ++failures;
          return;
        }
        ++loops;
      }
    });
  }
  // The load is on once every client has completed a loop.
  const auto loaded_by = Clock::now() + 60s;
  while (loops < kClients && failures == 0 && Clock::now() < loaded_by) {
    std::this_thread::sleep_for(5ms);  // Polling a counter with a deadline.
  }
  const int loops_before = loops;
  std::vector<double> latencies;
  const auto start = Clock::now();
  while (loops_before >= kClients && failures == 0 && Clock::now() - start < 30s) {
    if (Clock::now() - start >= 3s && loops - loops_before >= kClients) {
      break;
    }
    std::this_thread::sleep_for(5ms);  // The probes' pace, not a synchronisation.
    const auto t0 = Clock::now();
    RawHttp probe(port);
    auto res = probe.send(httpRequest("GET", "/readyz", port)) ? probe.read(5s) : std::nullopt;
    const auto t1 = Clock::now();
    EXPECT_TRUE(res && res->status == 200) << "probe " << latencies.size();
    latencies.push_back(ms(t1 - t0));
  }
  out.loads_during = loops - loops_before;
  stop = true;
  for (auto& t : clients) {
    t.join();
  }
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GE(loops_before, kClients) << "the load never got going";
  // The big answers were served all along, not starved by the probes.
  EXPECT_GE(out.loads_during, kClients);
  if (latencies.empty()) {
    return out;
  }
  std::sort(latencies.begin(), latencies.end());
  out.p50 = latencies[latencies.size() / 2];
  out.p99 = latencies[latencies.size() * 99 / 100];
  out.max = latencies.back();
  out.count = latencies.size();
  return out;
}

bool getOk(RawHttp& c, uint16_t port, const std::string& target, size_t* bytes = nullptr) {
  if (!c.send(httpRequest("GET", target, port))) {
    return false;
  }
  auto res = c.read(10s);
  if (bytes != nullptr && res) {
    *bytes = res->body.size();
  }
  return res && res->status == 200;
}

TEST_F(HttpOffloadTest, ReadyzStaysFastWhileFiveClientsListFifteenThousandNodes) {
  std::atomic<size_t> list_bytes{0};
  const Probes p = probeReadyzUnder(port(), [&](uint16_t port, RawHttp& c) {
    size_t bytes = 0;
    const bool ok = getOk(c, port, "/v1/nodes", &bytes);
    list_bytes = bytes;
    return ok;
  });
  std::printf(
      "/readyz with 5 clients on GET /v1/nodes (%d nodes, %zu bytes): p50 %.2f ms, "
      "p99 %.2f ms, max %.2f ms over %zu probes; %d lists served meanwhile\n",
      kNodes, list_bytes.load(), p.p50, p.p99, p.max, p.count, p.loads_during);
  RecordProperty("readyz_p50_ms", std::to_string(p.p50));
  RecordProperty("readyz_max_ms", std::to_string(p.max));
  // Loose enough for a loaded 2-core CI machine; built on the event loop, the lists made
  // it p50 ~1,000 ms, max ~1,100 ms.
  EXPECT_LT(p.p50, 50.0);
  EXPECT_LT(p.max, 500.0);
}

TEST_F(HttpOffloadTest, ReadyzStaysFastWhileFiveClientsLoadThePage) {
  // What the page asks for on load: clusters, the watch's initial state, holds, events.
  const Probes p = probeReadyzUnder(port(), [](uint16_t port, RawHttp& c) {
    if (!getOk(c, port, "/v1/clusters")) {
      return false;
    }
    {
      RawHttp watch(port);
      if (!watch.send(httpRequest("GET", "/v1/watch?initial=true", port)) ||
          !watch.readUntil("\"initialStateComplete\":true", 20s)) {
        return false;
      }
    }
    return getOk(c, port, "/v1/holds") && getOk(c, port, "/v1/events?limit=1000");
  });
  std::printf(
      "/readyz with 5 clients loading the page (%d nodes): p50 %.2f ms, p99 %.2f ms, "
      "max %.2f ms over %zu probes; %d page loads meanwhile\n",
      kNodes, p.p50, p.p99, p.max, p.count, p.loads_during);
  RecordProperty("readyz_p99_ms", std::to_string(p.p99));
  RecordProperty("readyz_max_ms", std::to_string(p.max));
  // Built on the event loop, the page's answers made it p99 ~230 ms, max ~380 ms (the p50
  // stays low either way: most probes fall between two big answers).
  EXPECT_LT(p.p50, 50.0);
  EXPECT_LT(p.p99, 150.0);
  EXPECT_LT(p.max, 500.0);
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

/// An in-process server (the queue bound is not a daemon flag) over 15,000 names.
class HttpOffloadQueue : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < kNodes; ++i) {
      registry::NodeInfo node;
      node.name = "node" + std::to_string(i);
      node.port = static_cast<uint16_t>(10000 + i % 50000);
      node.node_type = 77;
      node.highest_version = 6;
      node.lowest_version = 5;
      ASSERT_TRUE(registry_.add(node, {}).ok());
    }
    tokens_.setForTest("t", {"t", true, true});
  }
  /// One worker; `lists` lists of the 15,000 names may wait.
  std::unique_ptr<http::HttpServer> start(size_t lists) {
    http::HttpOptions ho;
    ho.listen = "127.0.0.1:0";
    ho.workers = 1;
    ho.worker_budget = lists * (kNodes + http::HttpOptions::kRequestCost);
    http::DaemonStatus st;
    st.epmd_listening = [] { return true; };
    st.draining = [] { return false; };
    auto server = std::make_unique<http::HttpServer>(api_, ho, st);
    EXPECT_FALSE(server->start().has_value());
    return server;
  }

  registry::Registry registry_{registry::RegistryOptions{}};
  api::TokenStore tokens_;
  api::Service api_{registry_, tokens_, 16};
};

TEST_F(HttpOffloadQueue, AFullWorkerQueueAnswers503WithRetryAfter) {
  auto server = start(/*lists=*/0);
  const uint16_t port = server->port();

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
  {
    RawHttp m(port);
    ASSERT_TRUE(m.send(httpRequest("GET", "/metrics", port)));
    auto res = m.read(5s);
    ASSERT_TRUE(res);
    EXPECT_NE(res->body.find("\nepmdx_http_busy_total " + std::to_string(refused) + "\n"),
              std::string::npos)
        << res->body;
  }
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
  server->stop();
}

TEST_F(HttpOffloadQueue, StoppingWhileListsAreBeingBuiltEndsTheirConnections) {
  auto server = start(/*lists=*/4);
  const uint16_t port = server->port();
  std::vector<std::unique_ptr<RawHttp>> conns;
  for (int i = 0; i < 4; ++i) {
    conns.push_back(std::make_unique<RawHttp>(port));
    ASSERT_TRUE(conns.back()->send(httpRequest("GET", "/v1/nodes", port)));
  }
  // The first request has reached the server (a probe behind it on the loop is answered).
  RawHttp probe(port);
  ASSERT_TRUE(probe.send(httpRequest("GET", "/livez", port)));
  ASSERT_TRUE(probe.read(5s));
  // Jobs running finish, waiting ones are dropped with their connections; the answer of a
  // running one goes with the event loop, as open keep-alive connections do.
  server->stop();
  server.reset();
  for (auto& c : conns) {
    EXPECT_TRUE(c->waitClosed(5s));
  }
}

}  // namespace
}  // namespace epmdx::testing
