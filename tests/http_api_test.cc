// The HTTP surface in process, over real TCP, with a real HTTP client. JSON is parsed back
// with protobuf into the same epmdx.v1 messages the gRPC API uses.

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <thread>

#include "epmdx/v1/registry.pb.h"
#include "server/api/json.h"
#include "server/api/service.h"
#include "server/http/http_server.h"
#include "tests/support/net.h"
#include "tests/support/process.h"
#include "tests/support/running_app.h"
#include "tests/support/sse_client.h"

namespace epmdx::testing {
namespace {

using namespace std::chrono_literals;
using google::protobuf::util::JsonStringToMessage;

constexpr const char* kAdmin = "http-admin-token";
constexpr const char* kReader = "http-reader-token";

// Every byte outside [A-Za-z0-9-._~] as %XX, as a browser's encodeURIComponent does.
std::string percentEncode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

template <class M>
M parse(const std::string& json) {
  M m;
  EXPECT_TRUE(JsonStringToMessage(json, &m).ok()) << json;
  return m;
}

class HttpApiTest : public ::testing::Test {
 protected:
  void start(bool anonymous = true, size_t history = 16384, size_t max_watchers = 64) {
    tokens_ = "/tmp/epmdx-http-test-" + std::to_string(getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::ofstream(tokens_) << kAdmin << " read evict name=ops\n" << kReader << " read\n";
    auto o = RunningApp::testOptions();
    o.tokens_file = tokens_;
    o.grpc_listen = "off";
    o.http_anonymous_read = anonymous;
    o.history_size = history;
    o.max_watchers = max_watchers;
    app_ = std::make_unique<RunningApp>(o);
    cli_ = std::make_unique<httplib::Client>("127.0.0.1", app_->app().httpPort());
  }
  void TearDown() override {
    cli_.reset();
    app_.reset();
    unlink(tokens_.c_str());
  }
  int registerNode(const std::string& name, uint16_t port, const std::string& extra = "") {
    const int fd = connectTo("127.0.0.1", app_->port());
    sendAll(fd, frame(alive2Body(name, port, 6, 5, extra)));
    EXPECT_EQ(readN(fd, 6, 2000ms).substr(0, 2), std::string("v\0", 2));
    return fd;
  }
  static httplib::Headers bearer(const char* token) {
    return {{"Authorization", std::string("Bearer ") + token}};
  }
  uint16_t httpPort() { return app_->app().httpPort(); }

  std::string tokens_;
  std::unique_ptr<RunningApp> app_;
  std::unique_ptr<httplib::Client> cli_;
};

TEST_F(HttpApiTest, NodesRoundTripAsProtobufJson) {
  start();
  const std::string name = "caf\xC3\xA9/\xE2\x98\x83 node";  // "café/☃ node"
  const int fd = registerNode(name, 4321, std::string("\0\x01x", 3));
  auto res = cli_->Get("/v1/nodes");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  const auto list = parse<v1::ListNodesResponse>(res->body);
  ASSERT_EQ(list.nodes_size(), 1);
  EXPECT_EQ(list.nodes(0).name(), name);
  EXPECT_EQ(list.nodes(0).extra(), std::string("\0\x01x", 3));
  EXPECT_EQ(list.revision(), 1u);
  auto one = cli_->Get("/v1/nodes/" + percentEncode(name));
  ASSERT_TRUE(one);
  EXPECT_EQ(one->status, 200);
  EXPECT_EQ(parse<v1::Node>(one->body).SerializeAsString(), list.nodes(0).SerializeAsString());
  auto missing = cli_->Get("/v1/nodes/nosuch");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  const auto err = parse<v1::ErrorBody>(missing->body);
  EXPECT_EQ(err.code(), 404);
  EXPECT_EQ(err.status(), "NOT_FOUND");
  close(fd);
}

TEST_F(HttpApiTest, EvictWithPreconditionAndAuth) {
  start();
  const int fd = registerNode("stuck", 77);
  const auto node = parse<v1::ListNodesResponse>(cli_->Get("/v1/nodes")->body).nodes(0);
  // Auth failures change nothing.
  auto none = cli_->Delete("/v1/nodes/stuck");
  EXPECT_EQ(none->status, 401);
  EXPECT_EQ(none->get_header_value("WWW-Authenticate"), "Bearer");
  EXPECT_EQ(parse<v1::ErrorBody>(none->body).status(), "UNAUTHENTICATED");
  EXPECT_EQ(cli_->Delete("/v1/nodes/stuck", bearer("bogus"))->status, 401);
  auto reader = cli_->Delete("/v1/nodes/stuck", bearer(kReader));
  EXPECT_EQ(reader->status, 403);
  EXPECT_EQ(parse<v1::ErrorBody>(reader->body).status(), "PERMISSION_DENIED");
  EXPECT_EQ(cli_->Get("/v1/nodes", bearer("bogus"))->status, 401);  // A bad token is refused.
  EXPECT_EQ(parse<v1::ListNodesResponse>(cli_->Get("/v1/nodes")->body).revision(), 1u);
  EXPECT_FALSE(readUntilClose(fd, 100ms).closed);
  // Precondition.
  const std::string stale =
      "{\"registrationId\":\"" + std::to_string(node.registration_id() + 5) + "\"}";
  auto conflict = cli_->Delete("/v1/nodes/stuck", bearer(kAdmin), stale, "application/json");
  EXPECT_EQ(conflict->status, 409);
  EXPECT_EQ(parse<v1::ErrorBody>(conflict->body).status(), "FAILED_PRECONDITION");
  EXPECT_EQ(
      cli_->Delete("/v1/nodes/stuck", bearer(kAdmin), "{not json", "application/json")->status,
      400);
  // Success: the node's connection closes and the name is free on the wire.
  const std::string body = "{\"registrationId\":\"" + std::to_string(node.registration_id()) +
                           "\",\"reason\":\"hung node\"}";
  auto ok = cli_->Delete("/v1/nodes/stuck", bearer(kAdmin), body, "application/json");
  ASSERT_EQ(ok->status, 200);
  const auto resp = parse<v1::EvictNodeResponse>(ok->body);
  EXPECT_EQ(resp.node().registration_id(), node.registration_id());
  EXPECT_EQ(resp.revision(), 2u);
  EXPECT_TRUE(readUntilClose(fd, 2000ms).closed);
  close(fd);
  const int again = registerNode("stuck", 78);
  EXPECT_EQ(cli_->Delete("/v1/nodes/nosuch", bearer(kAdmin))->status, 404);
  EXPECT_EQ(cli_->Delete("/v1/nodes/stuck?registration_id=abc", bearer(kAdmin))->status, 400);
  close(again);
}

TEST_F(HttpApiTest, ReadsNeedATokenWhenAnonymousReadIsOff) {
  start(/*anonymous=*/false);
  EXPECT_EQ(cli_->Get("/v1/nodes")->status, 401);
  EXPECT_EQ(cli_->Get("/v1/nodes", bearer(kReader))->status, 200);
  EXPECT_EQ(readSse(httpPort(), "/v1/watch", {}, [](const SseEvent&) { return false; }), 401);
  int status = readSse(httpPort(), std::string("/v1/watch?initial=true&access_token=") + kReader,
                       {}, [](const SseEvent& e) { return e.event != "initial"; });
  EXPECT_EQ(status, 200);
}

TEST_F(HttpApiTest, HealthMetricsOpenApiAndPage) {
  start();
  EXPECT_EQ(cli_->Get("/livez")->status, 200);
  auto ready = cli_->Get("/readyz?verbose");
  EXPECT_EQ(ready->status, 200);
  EXPECT_NE(ready->body.find("[+]epmd-listener ok"), std::string::npos) << ready->body;
  const int fd = registerNode("m1", 1);
  const int q = connectTo("127.0.0.1", app_->port());
  sendAll(q, frame("zm1"));
  readUntilClose(q, 2000ms);
  close(q);
  auto metrics = cli_->Get("/metrics");
  ASSERT_EQ(metrics->status, 200);
  EXPECT_EQ(metrics->get_header_value("Content-Type").rfind("text/plain; version=0.0.4", 0), 0u);
  for (const std::string line :
       {"epmdx_registered_nodes 1", "epmdx_registrations_total 1",
        "epmdx_epmd_lookups_total{result=\"found\"} 1",
        "epmdx_epmd_requests_total{type=\"alive2\"} 1", "epmdx_ready 1",
        "epmdx_watchers{api=\"sse\"} 0", "# TYPE epmdx_unregistrations_total counter"}) {
    EXPECT_NE(metrics->body.find(line + "\n"), std::string::npos) << line;
  }
  EXPECT_EQ(metrics->body.find("m1"), std::string::npos);  // No node name as a label.
  auto openapi = cli_->Get("/v1/openapi.json");
  ASSERT_EQ(openapi->status, 200);
  google::protobuf::Struct doc;
  ASSERT_TRUE(JsonStringToMessage(openapi->body, &doc).ok());
  EXPECT_EQ(doc.fields().at("openapi").string_value().rfind("3.", 0), 0u);
  EXPECT_TRUE(doc.fields().at("paths").struct_value().fields().count("/v1/watch"));
  auto page = cli_->Get("/");
  ASSERT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("<title>epmdx"), std::string::npos);
  EXPECT_NE(page->get_header_value("Content-Security-Policy").find("default-src 'self'"),
            std::string::npos);
  EXPECT_EQ(cli_->Get("/app.js")->status, 200);
  EXPECT_EQ(cli_->Get("/nope.js")->status, 404);
  close(fd);
}

// Last-Event-ID resume under churn: events before and after the reconnect, together, are
// every revision exactly once.
TEST_F(HttpApiTest, SseResumesWithLastEventIdUnderChurn) {
  start();
  std::atomic<bool> stop{false};
  std::thread churn([this, &stop] {
    for (int i = 0; !stop && i < 4000; ++i) {
      const int fd = registerNode("churn" + std::to_string(i), 1);
      close(fd);
    }
  });
  std::vector<uint64_t> seen;
  std::string last_id;
  auto collect = [&](size_t want) {
    return [&, want](const SseEvent& e) {
      if (e.event == "change") {
        const auto ev = parse<v1::NodeEvent>(e.data);
        EXPECT_EQ(std::to_string(ev.revision()), e.id);
        seen.push_back(ev.revision());
      }
      if (!e.id.empty()) {
        last_id = e.id;
      }
      return seen.size() < want;
    };
  };
  ASSERT_EQ(readSse(httpPort(), "/v1/watch?since=0", {}, collect(300)), 200);
  // Reconnect as a browser would, while changes keep coming.
  ASSERT_EQ(readSse(httpPort(), "/v1/watch", {{"Last-Event-ID", last_id}}, collect(900)), 200);
  ASSERT_EQ(readSse(httpPort(), "/v1/watch", {{"Last-Event-ID", last_id}}, collect(1500)), 200);
  stop = true;
  churn.join();
  ASSERT_GE(seen.size(), 1500u);
  for (size_t i = 0; i < seen.size(); ++i) {
    ASSERT_EQ(seen[i], i + 1) << "at " << i;  // From revision 1, no gap, no repeat.
  }
}

TEST_F(HttpApiTest, SseInitialStateResyncAndLimits) {
  start(true, /*history=*/8, /*max_watchers=*/1);
  std::vector<int> fds;
  for (int i = 0; i < 12; ++i) {
    fds.push_back(registerNode("n" + std::to_string(i), 1));
  }
  v1::WatchNodesResponse initial;
  // A client that leaves is noticed at the next write: a short heartbeat frees its slot.
  readSse(httpPort(), "/v1/watch?initial=true&heartbeat_ms=100", {}, [&](const SseEvent& e) {
    if (e.event == "initial") {
      initial = parse<v1::WatchNodesResponse>(e.data);
    }
    return e.event != "initial";
  });
  EXPECT_EQ(initial.initial_nodes_size(), 12);
  EXPECT_TRUE(initial.initial_state_complete());
  EXPECT_EQ(initial.revision(), 12u);
  auto waitNoWatchers = [this] {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (cli_->Get("/metrics")->body.find("epmdx_watchers{api=\"sse\"} 0\n") !=
          std::string::npos) {
        return true;
      }
      std::this_thread::sleep_for(20ms);  // Polling with a deadline.
    }
    return false;
  };
  ASSERT_TRUE(waitNoWatchers());
  // Too old for the history: a resync event, then the stream ends.
  std::vector<SseEvent> events;
  EXPECT_EQ(readSse(httpPort(), "/v1/watch", {{"Last-Event-ID", "1"}},
                    [&](const SseEvent& e) {
                      events.push_back(e);
                      return true;
                    }),
            200);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].event, "resync");
  const auto body = parse<v1::ErrorBody>(events[0].data);
  EXPECT_EQ(body.status(), "OUT_OF_RANGE");
  EXPECT_EQ(body.oldest_revision(), 5u);
  EXPECT_EQ(readSse(httpPort(), "/v1/watch?since=x", {}, [](const SseEvent&) { return false; }),
            400);
  ASSERT_TRUE(waitNoWatchers());
  // One watcher allowed: a second gets 503 while the first is open.
  std::atomic<bool> first_open{false};
  std::atomic<bool> release{false};
  std::thread holder([&] {
    readSse(httpPort(), "/v1/watch?heartbeat_ms=100", {}, [&](const SseEvent&) {
      first_open = true;
      return !release.load();
    });
  });
  while (!first_open) {
    std::this_thread::yield();
  }
  EXPECT_EQ(readSse(httpPort(), "/v1/watch", {}, [](const SseEvent&) { return false; }), 503);
  release = true;
  holder.join();
  for (int fd : fds) {
    close(fd);
  }
}

// GET /v1/events: what the kept history still holds, the newest `limit`, oldest first, as
// exactly the JSON objects the SSE change frames carry.
TEST_F(HttpApiTest, EventsAreTheKeptHistoryOldestFirst) {
  tokens_ = "/tmp/epmdx-http-test-" + std::to_string(getpid()) + "-events";
  std::ofstream(tokens_) << kAdmin << " read evict name=ops\n";
  auto o = RunningApp::testOptions();
  o.tokens_file = tokens_;
  o.grpc_listen = "off";
  o.history_size = 6;  // Small: the history compacts during the test.
  o.clusters.push_back({"blue", 0, "127.0.0.1"});
  app_ = std::make_unique<RunningApp>(o);
  cli_ = std::make_unique<httplib::Client>("127.0.0.1", httpPort());
  auto events = [this](const std::string& query) {
    auto res = cli_->Get("/v1/events" + query);
    EXPECT_TRUE(res);
    EXPECT_EQ(res->status, 200) << res->body;
    EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
    return parse<v1::ListEventsResponse>(res->body);
  };
  auto revisions = [](const v1::ListEventsResponse& r) {
    std::vector<uint64_t> out;
    for (const auto& e : r.events()) {
      out.push_back(e.revision());
    }
    return out;
  };
  auto empty = events("");
  EXPECT_EQ(empty.events_size(), 0);
  EXPECT_EQ(empty.revision(), 0u);
  EXPECT_EQ(empty.oldest_revision(), 1u);  // Holds none: current + 1.

  // Revisions 1-3 in default (a, b, a gone), 4 in blue.
  const int a = registerNode("a", 4000);
  const int b = registerNode("b", 4001);
  close(a);
  ASSERT_TRUE(eventually([&] { return events("").revision() == 3; }));
  const int blue = connectTo("127.0.0.1", app_->app().clusterPort(1));
  sendAll(blue, frame(alive2Body("c", 4002, 6, 5, "")));
  EXPECT_EQ(readN(blue, 6, 2000ms).substr(0, 2), std::string("v\0", 2));

  auto all = events("");
  EXPECT_EQ(revisions(all), (std::vector<uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(all.revision(), 4u);
  EXPECT_EQ(all.oldest_revision(), 1u);
  EXPECT_EQ(all.events(0).type(), v1::NodeEvent::REGISTERED);
  EXPECT_EQ(all.events(2).type(), v1::NodeEvent::UNREGISTERED);
  EXPECT_EQ(all.events(2).reason(), v1::CONNECTION_CLOSED);
  EXPECT_EQ(all.events(3).node().cluster(), "blue");
  // Node.host: a loopback peer with no holder looked up is on this host, and Erlang's
  // -sname default is the short host name, which /v1/clusters reports as the daemon's.
  char host[256] = {};
  ASSERT_EQ(gethostname(host, sizeof(host) - 1), 0);
  const std::string short_host = std::string(host).substr(0, std::string(host).find('.'));
  EXPECT_EQ(all.events(0).node().host(), short_host);
  EXPECT_EQ(parse<v1::ListClustersResponse>(cli_->Get("/v1/clusters")->body).host(), short_host);
  EXPECT_EQ(revisions(events("?limit=2")), (std::vector<uint64_t>{3, 4}));  // The newest two.
  EXPECT_EQ(revisions(events("?limit=0")), revisions(all));                 // 0: the default.
  EXPECT_EQ(revisions(events("?cluster=default")), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(revisions(events("?cluster=blue")), (std::vector<uint64_t>{4}));
  EXPECT_EQ(revisions(events("?cluster=default&limit=1")), (std::vector<uint64_t>{3}));
  EXPECT_EQ(revisions(events("?after_revision=2")), (std::vector<uint64_t>{3, 4}));
  EXPECT_EQ(revisions(events("?after_revision=4")), (std::vector<uint64_t>{}));
  // With after_revision: the FIRST events after it (a page), not the newest.
  EXPECT_EQ(revisions(events("?after_revision=1&cluster=default&limit=1")),
            (std::vector<uint64_t>{2}));
  EXPECT_EQ(revisions(events("?after_revision=0&limit=2")), (std::vector<uint64_t>{1, 2}));

  // The same JSON objects as the SSE change frames, byte for byte.
  std::vector<std::string> frames;
  ASSERT_EQ(readSse(httpPort(), "/v1/watch?since=0", {},
                    [&](const SseEvent& e) {
                      if (e.event == "change") {
                        frames.push_back(e.data);
                      }
                      return frames.size() < 4;
                    }),
            200);
  const std::string body = cli_->Get("/v1/events")->body;
  for (const auto& f : frames) {
    EXPECT_NE(body.find(f), std::string::npos) << f << "\nnot in\n" << body;
  }

  // Errors: over the maximum, not a number, an unknown cluster, a future revision, a method.
  auto status = [this](const std::string& query) {
    auto res = cli_->Get("/v1/events" + query);
    EXPECT_TRUE(res);
    return std::make_pair(res->status, parse<v1::ErrorBody>(res->body));
  };
  EXPECT_EQ(events("?limit=1000").events_size(), 4);
  auto [over, over_body] = status("?limit=1001");
  EXPECT_EQ(over, 400);
  EXPECT_EQ(over_body.message(), "limit 1001 is over 1000");
  EXPECT_EQ(status("?limit=99999999999").second.message(), "limit 4294967295 is over 1000");
  EXPECT_EQ(status("?limit=ten").first, 400);
  auto [unknown, unknown_body] = status("?cluster=nosuch");
  EXPECT_EQ(unknown, 400);
  EXPECT_NE(unknown_body.message().find("no cluster named \"nosuch\""), std::string::npos);
  EXPECT_EQ(status("?after_revision=5").first, 400);
  auto post = cli_->Post("/v1/events", "{}", "application/json");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);
  EXPECT_EQ(post->get_header_value("Allow"), "GET, HEAD");
  EXPECT_EQ(parse<v1::ErrorBody>(post->body).code(), 405);

  // Compaction: 6 kept, 10 made: the oldest kept is 5 and the answer says so.
  for (int i = 0; i < 3; ++i) {
    close(registerNode("d" + std::to_string(i), 4100));
  }
  ASSERT_TRUE(eventually([&] { return events("").revision() == 10; }));
  auto compacted = events("?limit=1000");
  EXPECT_EQ(compacted.oldest_revision(), 5u);
  EXPECT_EQ(revisions(compacted), (std::vector<uint64_t>{5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(revisions(events("?cluster=blue")), (std::vector<uint64_t>{}));  // Its 4 is gone.
  EXPECT_EQ(events("?cluster=blue").oldest_revision(), 5u);

  // Paging "after the last one seen", 2 at a time from just before the oldest kept: three
  // pages, every event exactly once, then an empty page at the current revision.
  std::vector<uint64_t> paged;
  uint64_t after = 4;
  for (int page = 0; page < 3; ++page) {
    auto got = events("?limit=2&after_revision=" + std::to_string(after));
    ASSERT_EQ(got.events_size(), 2) << "page " << page;
    for (auto r : revisions(got)) {
      paged.push_back(r);
    }
    after = got.events(1).revision();
  }
  EXPECT_EQ(paged, revisions(compacted));
  EXPECT_EQ(events("?limit=2&after_revision=" + std::to_string(after)).events_size(), 0);

  // Events after the revision asked for were compacted away: 410 with the window, as the
  // watch answers, never the leftovers.
  for (const char* gone : {"?after_revision=3", "?after_revision=0", "?after_revision=1&limit=1"}) {
    auto [code, body] = status(gone);
    EXPECT_EQ(code, 410) << gone;
    EXPECT_EQ(body.status(), "OUT_OF_RANGE") << gone;
    EXPECT_EQ(body.oldest_revision(), 5u) << gone;
    EXPECT_EQ(body.current_revision(), 10u) << gone;
    EXPECT_NE(body.message().find("no longer kept"), std::string::npos) << body.message();
  }
  close(b);
  close(blue);
}

TEST(HttpReadiness, DrainingIsNotReady) {
  registry::RegistryOptions ro;
  registry::Registry registry(ro);
  api::TokenStore tokens;
  tokens.setForTest("t", {"t", true, true});
  api::Service api(registry, tokens, 16);
  std::atomic<bool> listening{true};
  std::atomic<bool> draining{false};
  http::HttpOptions ho;
  ho.listen = "127.0.0.1:0";
  http::DaemonStatus st;
  st.epmd_listening = [&] { return listening.load(); };
  st.draining = [&] { return draining.load(); };
  http::HttpServer server(api, ho, st);
  ASSERT_FALSE(server.start().has_value());
  httplib::Client cli("127.0.0.1", server.port());
  EXPECT_EQ(cli.Get("/readyz")->status, 200);
  draining = true;
  auto r = cli.Get("/readyz?verbose");
  EXPECT_EQ(r->status, 503);
  EXPECT_NE(r->body.find("[-]not-draining failed"), std::string::npos) << r->body;
  draining = false;
  listening = false;
  EXPECT_EQ(cli.Get("/readyz")->status, 503);
  EXPECT_EQ(cli.Get("/livez")->status, 200);  // Alive all the same.
  server.stop();
}

}  // namespace
}  // namespace epmdx::testing

namespace epmdx::testing {
namespace {

TEST(HttpCapacity, IdleSocketsAreShedSoAProbeStillGetsIn) {
  registry::Registry registry(registry::RegistryOptions{});
  api::TokenStore tokens;
  tokens.setForTest("t", {"t", true, true});
  api::Service api(registry, tokens, 16);
  http::HttpOptions ho;
  ho.listen = "127.0.0.1:0";
  ho.max_connections = 50;
  http::DaemonStatus st;
  st.epmd_listening = [] { return true; };
  st.draining = [] { return false; };
  http::HttpServer server(api, ho, st);
  ASSERT_FALSE(server.start().has_value());
  // More idle sockets than the server takes: they never send a byte.
  std::vector<int> idle;
  for (int i = 0; i < 80; ++i) {
    const int fd = connectTo("127.0.0.1", server.port());
    ASSERT_GE(fd, 0);
    idle.push_back(fd);
  }
  httplib::Client cli("127.0.0.1", server.port());
  cli.set_read_timeout(std::chrono::seconds(5));
  for (int i = 0; i < 5; ++i) {
    auto r = cli.Get("/readyz");
    ASSERT_TRUE(r) << "probe " << i;
    EXPECT_EQ(r->status, 200);
  }
  for (int fd : idle) {
    close(fd);
  }
  server.stop();
}

// A node ALIVE again must not show the timeout that once made it
// UNRESPONSIVE; while it is UNRESPONSIVE the error explains why.
TEST(HealthView, LastErrorShowsOnlyWhileTheNodeIsNotAlive) {
  registry::Registry registry{registry::RegistryOptions{}};
  api::TokenStore tokens;
  api::Service api{registry, tokens, 4};
  registry::NodeInfo node;
  node.name = "flaky";
  node.port = 9100;
  node.node_type = 77;
  node.highest_version = 6;
  node.lowest_version = 5;
  auto added = registry.add(node, {});
  ASSERT_TRUE(added.ok());
  const auto id = added.value()->id;
  const std::string timeout = "timeout: connected, no answer in 2000 ms";
  ASSERT_TRUE(registry.recordProbe(registry::kDefaultCluster, "flaky", id, false, timeout));
  auto down = api.get("flaky", "");
  ASSERT_TRUE(down.ok());
  EXPECT_EQ(down.value().health().status(), v1::UNRESPONSIVE);
  EXPECT_EQ(down.value().health().last_error(), timeout);
  ASSERT_TRUE(registry.recordProbe(registry::kDefaultCluster, "flaky", id, true, ""));
  auto up = api.get("flaky", "");
  ASSERT_TRUE(up.ok());
  EXPECT_EQ(up.value().health().status(), v1::ALIVE);
  EXPECT_EQ(up.value().health().last_error(), "") << "ALIVE with an old error";
  EXPECT_NE(api::toJson(up.value()).find("\"lastError\":\"\""), std::string::npos)
      << api::toJson(up.value());
}

// The holder's time is when its facts were last found different, and is
// named so (changedAt); checkedAt, the old name, carries the same value for old clients.
// A look that finds the same holder keeps it.
TEST(HolderView, ChangedAtIsWhenTheFactsWereLastFoundDifferent) {
  registry::Registry registry{registry::RegistryOptions{}};
  api::TokenStore tokens;
  api::Service api{registry, tokens, 4};
  registry::NodeInfo node;
  node.name = "held";
  node.port = 9101;
  node.node_type = 77;
  node.highest_version = 6;
  node.lowest_version = 5;
  auto added = registry.add(node, {});
  ASSERT_TRUE(added.ok());
  const auto id = added.value()->id;
  auto fact = [](int64_t at) {
    auto f = std::make_shared<registry::HolderFact>();
    f->status = registry::HolderFact::Status::Found;
    f->processes.push_back({4242, 1000, "ops", "beam.smp", "beam.smp -sname held", "sleeping"});
    f->checked_ns = at;
    return std::shared_ptr<const registry::HolderFact>(std::move(f));
  };
  const int64_t first = 1'700'000'000'000'000'000;
  registry.recordHolder(registry::kDefaultCluster, "held", id, fact(first));
  registry.recordHolder(registry::kDefaultCluster, "held", id, fact(first + 5'000'000'000));
  auto got = api.get("held", "");
  ASSERT_TRUE(got.ok());
  const auto& h = got.value().holder();
  EXPECT_EQ(h.changed_at().seconds(), first / 1'000'000'000) << "a same-facts look moved it";
  EXPECT_EQ(h.checked_at().seconds(), h.changed_at().seconds());
  EXPECT_EQ(h.checked_at().nanos(), h.changed_at().nanos());
  const std::string json = api::toJson(got.value());
  EXPECT_NE(json.find("\"changedAt\":\"2023-11-14T22:13:20Z\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"checkedAt\":\"2023-11-14T22:13:20Z\""), std::string::npos) << json;
}

}  // namespace
}  // namespace epmdx::testing
