// The REST conventions of the real epmdx binary:
// 405 with Allow, JSON 404 for unknown routes, a JSON ErrorBody on every 4xx, no
// meaningless zero revisions in errors, no `reason` on REGISTERED events, and the Host
// header check that stops DNS rebinding on a loopback bind.

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "epmdx/v1/registry.pb.h"
#include "tests/support/epmdx_daemon.h"
#include "tests/support/net.h"
#include "tests/support/raw_http.h"

namespace epmdx::testing {
namespace {

using namespace std::chrono_literals;
using Headers = std::vector<std::pair<std::string, std::string>>;

const std::string kAdmin = std::string("Bearer ") + EpmdxDaemon::kAdminToken;
const std::string kReader = std::string("Bearer ") + EpmdxDaemon::kReaderToken;

class HttpConventionsTest : public ::testing::Test {
 protected:
  void start(std::vector<std::string> extra = {}) {
    daemon_ = std::make_unique<EpmdxDaemon>(std::move(extra));
    ASSERT_TRUE(daemon_->ready()) << daemon_->process().stderrText();
  }
  uint16_t port() const { return daemon_->httpPort(); }

  RawResponse exchange(const std::string& bytes) {
    RawHttp c(port());
    EXPECT_TRUE(c.send(bytes));
    auto res = c.read();
    EXPECT_TRUE(res) << "no response to " << bytes.substr(0, 80);
    return res ? *res : RawResponse{};
  }
  RawResponse request(const std::string& method, const std::string& target,
                      const Headers& headers = {}, const std::string& body = "") {
    return exchange(httpRequest(method, target, port(), headers, body));
  }
  int registerNode(const std::string& name) {
    const int fd = connectTo("127.0.0.1", daemon_->epmdPort());
    EXPECT_TRUE(sendAll(fd, frame(alive2Body(name, 9300))));
    EXPECT_EQ(readN(fd, 6, 2000ms).substr(0, 2), std::string("v\0", 2));
    return fd;
  }

  std::unique_ptr<EpmdxDaemon> daemon_;
};

/// A 4xx must be an ErrorBody in JSON whose code is the HTTP status, with no revision
/// window (those belong to OUT_OF_RANGE only).
void expectJsonError(const RawResponse& res, int status, const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_EQ(res.status, status) << res.body;
  EXPECT_EQ(res.header("content-type").rfind("application/json", 0), 0u)
      << res.header("content-type");
  v1::ErrorBody e;
  google::protobuf::util::JsonParseOptions strict;  // Unknown fields are an error.
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(res.body, &e, strict).ok()) << res.body;
  EXPECT_EQ(e.code(), status);
  EXPECT_FALSE(e.status().empty());
  EXPECT_FALSE(e.message().empty());
  EXPECT_EQ(res.body.find("oldestRevision"), std::string::npos) << res.body;
  EXPECT_EQ(res.body.find("currentRevision"), std::string::npos) << res.body;
}

TEST_F(HttpConventionsTest, WrongMethodGets405WithAllow) {
  start();
  auto post = request("POST", "/v1/nodes", {}, "{}");
  expectJsonError(post, 405, "POST /v1/nodes");
  EXPECT_NE(post.header("allow").find("GET"), std::string::npos) << post.header("allow");
  EXPECT_EQ(post.header("allow").find("DELETE"), std::string::npos) << post.header("allow");

  auto put = request("PUT", "/v1/nodes/x", {{"Authorization", kAdmin}}, "{}");
  expectJsonError(put, 405, "PUT /v1/nodes/x");
  EXPECT_NE(put.header("allow").find("DELETE"), std::string::npos) << put.header("allow");
  EXPECT_NE(put.header("allow").find("GET"), std::string::npos) << put.header("allow");

  auto del = request("DELETE", "/v1/watch", {{"Authorization", kAdmin}});
  expectJsonError(del, 405, "DELETE /v1/watch");
  EXPECT_FALSE(del.header("allow").empty());
}

TEST_F(HttpConventionsTest, UnknownRouteIsJson404) {
  start();
  expectJsonError(request("GET", "/v2/nodes"), 404, "GET /v2/nodes");
  expectJsonError(request("GET", "/v1/nodesx"), 404, "GET /v1/nodesx");
  expectJsonError(request("POST", "/nowhere", {}, "x"), 404, "POST /nowhere");
}

TEST_F(HttpConventionsTest, Every4xxHasAJsonErrorBody) {
  start();
  const int holder = registerNode("held");
  expectJsonError(request("GET", "/v1/nodes/absent"), 404, "unknown node");
  expectJsonError(request("GET", "/v1/nodes/a%zz"), 400, "bad escape in the name");
  expectJsonError(request("GET", "/v1/watch?since=abc"), 400, "bad since");
  expectJsonError(request("GET", "/v1/watch?heartbeat_ms=5"), 400, "bad heartbeat");
  expectJsonError(request("GET", "/v1/nodes", {{"Authorization", "Bearer nope"}}), 401,
                  "unknown token");
  expectJsonError(request("DELETE", "/v1/nodes/held"), 401, "no token");
  expectJsonError(request("DELETE", "/v1/nodes/held", {{"Authorization", kReader}}), 403,
                  "no evict scope");
  expectJsonError(request("DELETE", "/v1/nodes/held", {{"Authorization", kAdmin}},
                          "{\"registrationId\":\"99999\"}"),
                  409, "precondition");
  expectJsonError(request("DELETE", "/v1/nodes/held", {{"Authorization", kAdmin}}, "not json"), 400,
                  "body not JSON");
  expectJsonError(
      request("DELETE", "/v1/nodes/held?registration_id=x", {{"Authorization", kAdmin}}), 400,
      "bad registration_id");
  expectJsonError(request("DELETE", "/v1/nodes/held", {{"Authorization", kAdmin}},
                          "{\"reason\":\"" + std::string(300, 'r') + "\"}"),
                  400, "reason too long");
  expectJsonError(request("GET", "/v1/nodes", {{"Host", "evil.example"}}), 403, "foreign Host");
  expectJsonError(exchange("GARBAGE\r\n\r\n"), 400, "not HTTP");
  expectJsonError(exchange("GET nopath HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"), 400,
                  "target not origin-form");
  // The node survived every refused eviction.
  EXPECT_EQ(request("GET", "/v1/nodes/held").status, 200);
  close(holder);
}

TEST_F(HttpConventionsTest, OnlyOutOfRangeCarriesTheRevisionWindow) {
  start();
  // Revision 1 is older than anything a daemon started from the clock keeps: resync.
  RawHttp c(port());
  ASSERT_TRUE(c.send(httpRequest("GET", "/v1/watch?since=1", port())));
  ASSERT_TRUE(c.readUntil("\n\n", 5s));
  ASSERT_TRUE(c.waitClosed(5s)) << "a resync ends the stream";
  const std::string& text = c.buffered();
  const auto at = text.find("event: resync\n");
  ASSERT_NE(at, std::string::npos) << text;
  const auto data = text.find("data: ", at);
  ASSERT_NE(data, std::string::npos);
  const std::string json = text.substr(data + 6, text.find('\n', data) - data - 6);
  v1::ErrorBody e;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &e).ok()) << json;
  EXPECT_EQ(e.status(), "OUT_OF_RANGE");
  EXPECT_TRUE(e.has_oldest_revision()) << json;
  EXPECT_TRUE(e.has_current_revision()) << json;
  EXPECT_GT(e.current_revision(), 1u);
}

TEST_F(HttpConventionsTest, RegisteredEventsHaveNoReason) {
  start();
  RawHttp watch(port());
  ASSERT_TRUE(watch.send(httpRequest("GET", "/v1/watch?initial=true", port())));
  ASSERT_TRUE(watch.readUntil("event: initial", 5s)) << watch.buffered();
  const int holder = registerNode("reasonless");
  ASSERT_TRUE(watch.readUntil("\"REGISTERED\"", 5s)) << watch.buffered();
  close(holder);
  ASSERT_TRUE(watch.readUntil("\"UNREGISTERED\"", 5s)) << watch.buffered();
  ASSERT_TRUE(watch.readUntil("\n\n", 5s));
  std::vector<v1::NodeEvent> events;
  std::vector<std::string> raw;
  size_t pos = 0;
  const std::string& text = watch.buffered();
  while ((pos = text.find("event: change\n", pos)) != std::string::npos) {
    const auto data = text.find("data: ", pos);
    const auto end = text.find('\n', data);
    if (data == std::string::npos || end == std::string::npos) {
      break;
    }
    raw.push_back(text.substr(data + 6, end - data - 6));
    v1::NodeEvent ev;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(raw.back(), &ev).ok()) << raw.back();
    events.push_back(ev);
    pos = end;
  }
  ASSERT_EQ(events.size(), 2u) << text;
  EXPECT_EQ(events[0].type(), v1::NodeEvent::REGISTERED);
  EXPECT_FALSE(events[0].has_reason()) << raw[0];
  // Not in the JSON at all, at the top level (the holder has a reason of its own).
  google::protobuf::Struct top;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(raw[0], &top).ok());
  EXPECT_EQ(top.fields().count("reason"), 0u) << raw[0];
  EXPECT_EQ(events[1].type(), v1::NodeEvent::UNREGISTERED);
  EXPECT_TRUE(events[1].has_reason()) << raw[1];
  EXPECT_EQ(events[1].reason(), v1::CONNECTION_CLOSED) << raw[1];
}

TEST_F(HttpConventionsTest, LoopbackBindAcceptsOnlyLoopbackHosts) {
  start();
  const std::string p = std::to_string(port());
  for (const std::string& host : std::vector<std::string>{
           "localhost:" + p, "127.0.0.1:" + p, "LOCALHOST:" + p, "[::1]:" + p, "localhost"}) {
    EXPECT_EQ(request("GET", "/v1/nodes", {{"Host", host}}).status, 200) << host;
  }
  for (const std::string& host :
       std::vector<std::string>{"evil.example", "evil.example:" + p, "localhost.evil.example:" + p,
                                "127.0.0.1.nip.io:" + p}) {
    expectJsonError(request("GET", "/v1/nodes", {{"Host", host}}), 403, host);
    // Not only the API: the page and the watch too.
    EXPECT_EQ(request("GET", "/", {{"Host", host}}).status, 403) << host;
    EXPECT_EQ(request("GET", "/v1/watch", {{"Host", host}}).status, 403) << host;
  }
}

// Health checkers (HAProxy's `option httpchk`, HTTP/1.0) send no Host at
// all; no browser does, so answering them opens nothing to DNS rebinding. A Host that is
// there but empty or foreign is still refused.
TEST_F(HttpConventionsTest, LoopbackBindAnswersRequestsWithoutHost) {
  start();
  const RawResponse ready = exchange("GET /readyz HTTP/1.0\r\n\r\n");
  EXPECT_EQ(ready.status, 200) << ready.body;
  const RawResponse nodes = exchange("GET /v1/nodes HTTP/1.0\r\nUser-Agent: probe\r\n\r\n");
  EXPECT_EQ(nodes.status, 200) << nodes.body;
  EXPECT_EQ(exchange("GET /livez HTTP/1.0\r\n\r\n").status, 200);
  // HAProxy's default check, exactly: `option httpchk` with no arguments.
  const RawResponse options = exchange("OPTIONS / HTTP/1.0\r\n\r\n");
  EXPECT_EQ(options.status, 200) << options.body;
  EXPECT_EQ(options.header("allow"), "GET, HEAD");
  expectJsonError(exchange("GET /readyz HTTP/1.0\r\nHost:\r\n\r\n"), 403, "empty Host");
  expectJsonError(exchange("GET /readyz HTTP/1.0\r\nHost: evil.example\r\n\r\n"), 403,
                  "foreign Host over HTTP/1.0");
}

TEST_F(HttpConventionsTest, AllowedHostsStarAcceptsAny) {
  start({"--http-allowed-hosts=*"});
  EXPECT_EQ(request("GET", "/v1/nodes", {{"Host", "evil.example"}}).status, 200);
  EXPECT_EQ(request("GET", "/v1/nodes", {{"Host", "anything.example:1234"}}).status, 200);
}

TEST_F(HttpConventionsTest, AllowedHostsListAddsNames) {
  start({"--http-allowed-hosts=epmdx.internal"});
  EXPECT_EQ(request("GET", "/v1/nodes", {{"Host", "epmdx.internal:4371"}}).status, 200);
  EXPECT_EQ(request("GET", "/v1/nodes", {{"Host", "127.0.0.1:" + std::to_string(port())}}).status,
            200);
  EXPECT_EQ(request("GET", "/v1/nodes", {{"Host", "evil.example"}}).status, 403);
}

}  // namespace
}  // namespace epmdx::testing
