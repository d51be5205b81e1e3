// The HTTP routes without sockets: http::Router over a real registry and api::Service. What
// the route table decides (404, 405 with Allow, OPTIONS, the scope each route needs, the
// offload decision), the parameter errors, every error through the one error table, and
// each route's answer.

#include "server/http/router.h"

#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "epmdx/v1/registry.pb.h"
#include "server/api/auth.h"
#include "server/api/service.h"
#include "server/registry/registry.h"
#include "tests/support/test_nodes.h"

namespace epmdx::http {
namespace {

constexpr size_t kCost = 50;  // HttpOptions::kRequestCost, as the server passes it.

template <class Message>
Message parse(const std::string& json) {
  Message m;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &m).ok()) << json;
  return m;
}

std::string header(const HttpResponse& res, const std::string& name) {
  for (const auto& [k, v] : res.headers) {
    if (k == name) {
      return v;
    }
  }
  return "";
}

class RouterTest : public ::testing::Test {
 protected:
  RouterTest() {
    registry::RegistryOptions ro;
    ro.cluster_names = {"default", "blue"};
    ro.history_size = 4;
    ro.async_notify = false;
    registry_ = std::make_unique<registry::Registry>(ro);
    api::TokenMap tokens;
    tokens["admin"] = api::Principal{"admin", true, true};
    tokens["reader"] = api::Principal{"reader", true, false};
    tokens_.setForTest(std::move(tokens));
    api_ = std::make_unique<api::Service>(*registry_, tokens_, 8);
    makeRouter(true);
  }

  void makeRouter(bool anonymous_read, std::vector<std::string> hosts = {}) {
    RouterOptions o;
    o.anonymous_read = anonymous_read;
    o.version = "test";
    o.allowed_hosts = std::move(hosts);
    DaemonStatus st;
    st.epmd_listening = [this] { return listening_; };
    st.draining = [] { return false; };
    router_ = std::make_unique<Router>(*api_, o, st);
  }

  void add(const std::string& name, registry::ClusterId cluster = 0) {
    registry::NodeInfo n = testNode(name, 9000);
    ASSERT_TRUE(registry_->add(n, {"127.0.0.1:1", 5, "127.0.0.1:4369"}, {}, cluster).ok());
  }

  HttpRequest request(std::string_view method, std::string_view target,
                      std::string_view authorization = "") {
    HttpRequest r;
    r.method = method;
    r.target = target;
    r.host = "localhost";
    r.authorization = authorization;
    r.peer = "127.0.0.1:50000";
    return r;
  }

  RouteResult route(const HttpRequest& req) { return router_->handle(req, 3); }

  HttpResponse respond(std::string_view method, std::string_view target,
                       std::string_view authorization = "") {
    auto result = route(request(method, target, authorization));
    EXPECT_TRUE(std::holds_alternative<HttpResponse>(result)) << target;
    return std::holds_alternative<HttpResponse>(result) ? std::get<HttpResponse>(result)
                                                        : HttpResponse{};
  }

  /// An ErrorBody whose code is the HTTP status.
  v1::ErrorBody expectError(const HttpResponse& res, int status, const std::string& code) {
    EXPECT_EQ(res.status, status) << res.body;
    EXPECT_EQ(res.content_type, "application/json");
    auto e = parse<v1::ErrorBody>(res.body);
    EXPECT_EQ(e.code(), status);
    EXPECT_EQ(e.status(), code);
    EXPECT_FALSE(e.message().empty());
    return e;
  }

  std::optional<size_t> cost(std::string_view method, std::string_view target) {
    return router_->offloadCost(router_->resolve(request(method, target)), kCost);
  }

  bool listening_ = true;
  std::unique_ptr<registry::Registry> registry_;
  api::TokenStore tokens_;
  std::unique_ptr<api::Service> api_;
  std::unique_ptr<Router> router_;
};

TEST_F(RouterTest, UnknownPathIs404AndMalformedTargetIs400) {
  expectError(respond("GET", "/v1/nope"), 404, "NOT_FOUND");
  expectError(respond("GET", "/v1/nodes/"), 404, "NOT_FOUND");  // A name is not empty.
  expectError(respond("DELETE", "/nope.js"), 404, "NOT_FOUND");
  expectError(respond("GET", "v1/nodes"), 400, "INVALID_ARGUMENT");
  expectError(respond("GET", "/v1/nodes?cluster=%zz"), 400, "INVALID_ARGUMENT");
}

TEST_F(RouterTest, WrongMethodIs405WithTheRoutesAllow) {
  struct Case {
    const char* method;
    const char* target;
    const char* allow;
  };
  for (const Case& c :
       {Case{"POST", "/v1/nodes", "GET, HEAD"}, Case{"PUT", "/v1/nodes/a", "GET, HEAD, DELETE"},
        Case{"GET", "/v1/holds/a", "DELETE"}, Case{"DELETE", "/v1/watch", "GET, HEAD"},
        Case{"DELETE", "/v1/holds", "GET, HEAD"}, Case{"POST", "/", "GET, HEAD"},
        Case{"PATCH", "/metrics", "GET, HEAD"}}) {
    SCOPED_TRACE(std::string(c.method) + " " + c.target);
    auto res = respond(c.method, c.target);
    auto e = expectError(res, 405, "INVALID_ARGUMENT");
    EXPECT_EQ(header(res, "Allow"), c.allow);
    EXPECT_NE(e.message().find(c.method), std::string::npos) << e.message();
  }
}

TEST_F(RouterTest, OptionsAnswersAllowOnEveryRoute) {
  for (const auto& [target, allow] :
       std::vector<std::pair<const char*, const char*>>{{"/v1/nodes", "GET, HEAD"},
                                                        {"/v1/nodes/a", "GET, HEAD, DELETE"},
                                                        {"/v1/holds/a", "DELETE"},
                                                        {"/", "GET, HEAD"},
                                                        {"/livez", "GET, HEAD"}}) {
    auto res = respond("OPTIONS", target);
    EXPECT_EQ(res.status, 200) << target;
    EXPECT_EQ(header(res, "Allow"), allow) << target;
    EXPECT_TRUE(res.body.empty());
  }
  expectError(respond("OPTIONS", "/v1/nope"), 404, "NOT_FOUND");
}

TEST_F(RouterTest, ReadsAreAnonymousWhenAllowedButABadTokenStillFails) {
  EXPECT_EQ(respond("GET", "/v1/nodes").status, 200);
  auto bad = respond("GET", "/v1/nodes", "Bearer nope");
  expectError(bad, 401, "UNAUTHENTICATED");
  EXPECT_EQ(header(bad, "WWW-Authenticate"), "Bearer");
}

TEST_F(RouterTest, EveryReadRouteNeedsTheReadScopeWithoutAnonymousReads) {
  makeRouter(false);
  add("a");
  for (const char* target :
       {"/v1/nodes", "/v1/nodes/a", "/v1/clusters", "/v1/holds", "/v1/events", "/v1/watch"}) {
    SCOPED_TRACE(target);
    expectError(respond("GET", target), 401, "UNAUTHENTICATED");
    auto with_header = route(request("GET", target, "Bearer reader"));
    if (auto* res = std::get_if<HttpResponse>(&with_header)) {
      EXPECT_EQ(res->status, 200) << res->body;
    }
    // A token in the URL (EventSource sends no headers) is a read token too.
    auto in_url = route(request("GET", std::string(target) + "?access_token=reader"));
    if (auto* res = std::get_if<HttpResponse>(&in_url)) {
      EXPECT_EQ(res->status, 200) << res->body;
    }
  }
  // Public routes need nothing.
  for (const char* target : {"/livez", "/readyz", "/metrics", "/v1/openapi.json", "/"}) {
    EXPECT_EQ(respond("GET", target).status, 200) << target;
  }
}

TEST_F(RouterTest, EvictionsNeedTheEvictScopeInTheHeaderOnly) {
  add("a");
  expectError(respond("DELETE", "/v1/nodes/a"), 401, "UNAUTHENTICATED");
  expectError(respond("DELETE", "/v1/nodes/a", "Bearer reader"), 403, "PERMISSION_DENIED");
  expectError(respond("DELETE", "/v1/nodes/a?access_token=admin"), 401, "UNAUTHENTICATED");
  expectError(respond("DELETE", "/v1/holds/a", "Bearer reader"), 403, "PERMISSION_DENIED");
  EXPECT_NE(registry_->find("a"), nullptr);
  EXPECT_EQ(respond("DELETE", "/v1/nodes/a", "Bearer admin").status, 200);
  EXPECT_EQ(registry_->find("a"), nullptr);
}

TEST_F(RouterTest, ForeignHostIsRefusedBeforeRouting) {
  makeRouter(true, {"localhost"});
  auto req = request("GET", "/v1/nope");
  req.host = "evil.example:4371";
  expectError(std::get<HttpResponse>(route(req)), 403, "PERMISSION_DENIED");
  req.host = "LOCALHOST:4371";
  expectError(std::get<HttpResponse>(route(req)), 404, "NOT_FOUND");
  req.has_host = false;  // HTTP/1.0 health checkers.
  req.host = "";
  req.target = "/livez";
  EXPECT_EQ(std::get<HttpResponse>(route(req)).status, 200);
}

TEST_F(RouterTest, MalformedParametersAre400WithWhatIsExpected) {
  add("a");
  struct Case {
    const char* method;
    const char* target;
    const char* says;
  };
  for (const Case& c : {
           Case{"GET", "/v1/events?limit=ten", "limit must be a number"},
           Case{"GET", "/v1/events?limit=1001", "limit 1001 is over 1000"},
           Case{"GET", "/v1/events?after_revision=x", "after_revision must be a revision"},
           Case{"GET", "/v1/watch?since=x", "since / Last-Event-ID must be a revision"},
           Case{"GET", "/v1/watch?heartbeat_ms=50", "heartbeat_ms must be a number >= 100"},
           Case{"GET", "/v1/watch?heartbeat_ms=x", "heartbeat_ms must be a number >= 100"},
           Case{"GET", "/v1/nodes?cluster=green", "green"},
           Case{"GET", "/v1/nodes/a%zz", "malformed node name escape"},
           Case{"DELETE", "/v1/nodes/a%zz", "malformed node name escape"},
           Case{"DELETE", "/v1/holds/a%zz", "malformed node name escape"},
           Case{"DELETE", "/v1/nodes/a?registration_id=x", "registration_id must be a number"},
           Case{"DELETE", "/v1/nodes/a?hold_seconds=x", "hold_seconds must be a number"},
           // The bound is the service's (the same for gRPC), said once.
           Case{"DELETE", "/v1/nodes/a?hold_seconds=99999999", "hold_seconds is over 604800"},
           Case{"DELETE", "/v1/nodes/a?hold_seconds=99999999999", "hold_seconds is over 604800"},
       }) {
    SCOPED_TRACE(std::string(c.method) + " " + c.target);
    auto e = expectError(respond(c.method, c.target, "Bearer admin"), 400, "INVALID_ARGUMENT");
    EXPECT_NE(e.message().find(c.says), std::string::npos) << e.message();
  }
  auto req = request("DELETE", "/v1/nodes/a", "Bearer admin");
  req.body = "{not json";
  expectError(std::get<HttpResponse>(route(req)), 400, "INVALID_ARGUMENT");
  req.target = "/v1/holds/a";
  expectError(std::get<HttpResponse>(route(req)), 400, "INVALID_ARGUMENT");
  EXPECT_NE(registry_->find("a"), nullptr);
}

TEST_F(RouterTest, OffloadFollowsTheRouteTableAndTheRegistrySize) {
  add("a");
  add("b");
  add("c", 1);
  EXPECT_EQ(cost("GET", "/v1/nodes"), kCost + 3);
  EXPECT_EQ(cost("HEAD", "/v1/nodes?cluster=blue"), kCost + 3);
  EXPECT_EQ(cost("GET", "/v1/holds"), kCost + 0);
  EXPECT_EQ(cost("GET", "/v1/events"), kCost + api::kDefaultEventsLimit);
  EXPECT_EQ(cost("GET", "/v1/events?limit=7"), kCost + 7);
  EXPECT_EQ(cost("GET", "/v1/events?limit=5000"), kCost + api::kMaxEventsLimit);
  EXPECT_EQ(cost("GET", "/v1/events?limit=x"), kCost + api::kDefaultEventsLimit);
  EXPECT_EQ(cost("GET", "/v1/watch?initial=true"), kCost + 3);
  EXPECT_EQ(cost("GET", "/v1/watch?initial=1"), kCost + 3);
  // Answered on the loop: small, or refused at once.
  for (const auto& [method, target] :
       std::vector<std::pair<const char*, const char*>>{{"GET", "/v1/watch"},
                                                        {"GET", "/v1/nodes/a"},
                                                        {"DELETE", "/v1/nodes/a"},
                                                        {"POST", "/v1/nodes"},
                                                        {"OPTIONS", "/v1/nodes"},
                                                        {"GET", "/v1/nodes?cluster=%zz"},
                                                        {"GET", "/v1/clusters"},
                                                        {"GET", "/metrics"},
                                                        {"GET", "/livez"},
                                                        {"GET", "/v1/nope"}}) {
    EXPECT_EQ(cost(method, target), std::nullopt) << method << " " << target;
  }
  EXPECT_TRUE(router_->resolve(request("GET", "/v1/watch?initial=true")).opens_stream);
  EXPECT_TRUE(router_->resolve(request("POST", "/v1/watch")).opens_stream);
  EXPECT_FALSE(router_->resolve(request("GET", "/v1/nodes")).opens_stream);
}

TEST_F(RouterTest, NodesNodeAndClusters) {
  add("a");
  add("b", 1);
  auto all = parse<v1::ListNodesResponse>(respond("GET", "/v1/nodes").body);
  EXPECT_EQ(all.nodes_size(), 2);
  auto blue = parse<v1::ListNodesResponse>(respond("GET", "/v1/nodes?cluster=blue").body);
  ASSERT_EQ(blue.nodes_size(), 1);
  EXPECT_EQ(blue.nodes(0).name(), "b");
  auto a = respond("GET", "/v1/nodes/a");
  EXPECT_EQ(a.content_type, "application/json");
  EXPECT_EQ(parse<v1::Node>(a.body).name(), "a");
  EXPECT_EQ(parse<v1::Node>(respond("GET", "/v1/nodes/b?cluster=blue").body).name(), "b");
  expectError(respond("GET", "/v1/nodes/b"), 404, "NOT_FOUND");  // Not in the default one.
  auto clusters = parse<v1::ListClustersResponse>(respond("GET", "/v1/clusters").body);
  ASSERT_EQ(clusters.clusters_size(), 2);
  EXPECT_EQ(clusters.clusters(1).name(), "blue");
  EXPECT_EQ(clusters.clusters(1).nodes(), 1u);
}

TEST_F(RouterTest, EvictWithAHoldThenLiftIt) {
  add("a");
  auto evicted = respond("DELETE", "/v1/nodes/a?hold_seconds=60&reason=moved", "Bearer admin");
  ASSERT_EQ(evicted.status, 200) << evicted.body;
  auto ev = parse<v1::EvictNodeResponse>(evicted.body);
  EXPECT_EQ(ev.node().name(), "a");
  EXPECT_EQ(ev.hold().name(), "a");
  auto holds = parse<v1::ListHoldsResponse>(respond("GET", "/v1/holds").body);
  ASSERT_EQ(holds.holds_size(), 1);
  auto req = request("DELETE", "/v1/holds/a", "Bearer admin");
  req.body = R"({"reason": "back"})";
  auto lifted = std::get<HttpResponse>(route(req));
  ASSERT_EQ(lifted.status, 200) << lifted.body;
  EXPECT_EQ(parse<v1::LiftHoldResponse>(lifted.body).hold().name(), "a");
  EXPECT_EQ(parse<v1::ListHoldsResponse>(respond("GET", "/v1/holds").body).holds_size(), 0);
  expectError(respond("DELETE", "/v1/holds/a", "Bearer admin"), 404, "NOT_FOUND");
}

TEST_F(RouterTest, EvictByRegistrationIdInTheBody) {
  add("a");
  const auto id = registry_->find("a")->id;
  auto req = request("DELETE", "/v1/nodes/a", "Bearer admin");
  const std::string body = R"({"registrationId": ")" + std::to_string(id + 1) + R"("})";
  req.body = body;
  expectError(std::get<HttpResponse>(route(req)), 409, "FAILED_PRECONDITION");
  const std::string target = "/v1/nodes/a?registration_id=" + std::to_string(id);
  EXPECT_EQ(respond("DELETE", target, "Bearer admin").status, 200);
}

TEST_F(RouterTest, EventsNewestAndAfterARevision) {
  add("a");
  add("b");
  auto events = parse<v1::ListEventsResponse>(respond("GET", "/v1/events").body);
  ASSERT_EQ(events.events_size(), 2);
  const std::string after =
      "/v1/events?limit=1&after_revision=" + std::to_string(events.events(0).revision());
  auto page = parse<v1::ListEventsResponse>(respond("GET", after).body);
  ASSERT_EQ(page.events_size(), 1);
  EXPECT_EQ(page.events(0).node().name(), "b");
}

TEST_F(RouterTest, WatchStartsAStreamOrSaysResync) {
  add("a");
  auto started = route(request("GET", "/v1/watch?initial=true&heartbeat_ms=250"));
  ASSERT_TRUE(std::holds_alternative<SseStart>(started));
  EXPECT_EQ(std::get<SseStart>(started).heartbeat, std::chrono::milliseconds(250));
  auto plain = route(request("GET", "/v1/watch"));
  ASSERT_TRUE(std::holds_alternative<SseStart>(plain));
  EXPECT_EQ(std::get<SseStart>(plain).heartbeat, std::chrono::milliseconds(15000));
  for (int i = 0; i < 8; ++i) {  // Past the history of 4.
    add("n" + std::to_string(i));
  }
  auto req = request("GET", "/v1/watch");
  req.last_event_id = "1";
  auto resync = std::get<HttpResponse>(route(req));
  EXPECT_EQ(resync.status, 200);
  EXPECT_EQ(resync.content_type, "text/event-stream");
  EXPECT_NE(resync.body.find("event: resync"), std::string::npos) << resync.body;
  EXPECT_NE(resync.body.find("OUT_OF_RANGE"), std::string::npos) << resync.body;
}

TEST_F(RouterTest, HealthMetricsAndPages) {
  EXPECT_EQ(respond("GET", "/livez").body, "ok\n");
  EXPECT_EQ(respond("HEAD", "/readyz").status, 200);
  auto verbose = respond("GET", "/readyz?verbose");
  EXPECT_NE(verbose.body.find("[+]epmd-listener ok"), std::string::npos) << verbose.body;
  listening_ = false;
  EXPECT_EQ(respond("GET", "/readyz").status, 503);
  add("a", 1);
  auto metrics = respond("GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("epmdx_cluster_nodes{cluster=\"blue\"} 1"), std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find("epmdx_http_connections_open 3"), std::string::npos);
  EXPECT_NE(metrics.body.find("epmdx_ready 0"), std::string::npos);
  auto openapi = respond("GET", "/v1/openapi.json");
  EXPECT_EQ(openapi.content_type, "application/json");
  EXPECT_NE(openapi.body.find("\"openapi\""), std::string::npos);
  auto index = respond("GET", "/");
  EXPECT_EQ(index.content_type, "text/html; charset=utf-8");
  EXPECT_FALSE(header(index, "Content-Security-Policy").empty());
}

TEST(HttpErrorTable, EveryKindHasItsStatusCodeAndRetry) {
  struct Row {
    HttpError kind;
    int status;
    const char* code;
    const char* retry_after;
  };
  for (const Row& r : {Row{HttpError::BadRequest, 400, "INVALID_ARGUMENT", ""},
                       Row{HttpError::MethodNotAllowed, 405, "INVALID_ARGUMENT", ""},
                       Row{HttpError::BodyTooLarge, 413, "RESOURCE_EXHAUSTED", ""},
                       Row{HttpError::HeadersTooLarge, 431, "RESOURCE_EXHAUSTED", ""},
                       Row{HttpError::TooManyConnections, 503, "UNAVAILABLE", "5"},
                       Row{HttpError::Busy, 503, "UNAVAILABLE", "1"},
                       Row{HttpError::ShuttingDown, 503, "UNAVAILABLE", ""}}) {
    const auto res = errorResponse(r.kind, "why");
    EXPECT_EQ(res.status, r.status);
    const auto e = parse<v1::ErrorBody>(res.body);
    EXPECT_EQ(e.code(), r.status);
    EXPECT_EQ(e.status(), r.code);
    EXPECT_EQ(e.message(), "why");
    EXPECT_EQ(header(res, "Retry-After"), r.retry_after) << r.status;
  }
  // A use case's error: the status its code maps to.
  const auto watchers = errorResponse({api::Code::ResourceExhausted, "too many watchers", {}});
  EXPECT_EQ(watchers.status, 503);
  EXPECT_EQ(header(watchers, "Retry-After"), "5");
  EXPECT_EQ(errorResponse({api::Code::NotFound, "x", {}}).status, 404);
  EXPECT_EQ(sizeText(16 * 1024), "16 KiB");
  EXPECT_EQ(sizeText(1000), "1000 bytes");
}

}  // namespace
}  // namespace epmdx::http
