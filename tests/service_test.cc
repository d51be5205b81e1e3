// The use-case layer (api::Service) on a real Registry, without any adapter: what the gRPC
// and HTTP servers both translate. Proven here: list/get/evict/holds/listEvents and their
// errors (which name the clusters and the limits), authentication, the per-surface watcher
// cap, the checks of openWatch, and what the HTTP adapter reads instead of the registry.

#include "server/api/service.h"
#include "tests/support/test_nodes.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <vector>

namespace epmdx::api {
namespace {

constexpr registry::ClusterId kBlue = 1;

class ServiceTest : public ::testing::Test {
 protected:
  ServiceTest() : registry_(options()), service_(registry_, tokens_, 2) {
    tokens_.setForTest(
        {{"reader", Principal{"alice", true, false}}, {"admin", Principal{"ops", true, true}}});
  }

  static registry::RegistryOptions options() {
    registry::RegistryOptions o;
    o.cluster_names = {"default", "blue"};
    o.history_size = 8;
    o.async_notify = false;
    return o;
  }

  registry::RegistrationPtr add(const std::string& name, registry::ClusterId cluster = 0) {
    registry::NodeInfo n = testNode(name, 4100);
    auto added = registry_.add(n, registry::Origin{"127.0.0.1:7", -1, ""}, {}, cluster);
    EXPECT_TRUE(added.ok()) << name;
    return added.ok() ? added.value() : nullptr;
  }

  static v1::EvictNodeRequest evictOf(const std::string& name, const std::string& cluster = "") {
    v1::EvictNodeRequest req;
    req.set_name(name);
    req.set_cluster(cluster);
    req.set_reason("stuck");
    return req;
  }

  /// The error of a result that must have failed.
  template <class R>
  static Error errorOf(const R& result) {
    EXPECT_FALSE(result.ok());
    return result.ok() ? Error{} : result.error();
  }

  const Principal ops_{"ops", true, true};
  TokenStore tokens_;
  registry::Registry registry_;
  Service service_;
};

TEST_F(ServiceTest, ListsEveryClusterOrOne) {
  add("a");
  add("b", kBlue);
  const auto all = service_.list("");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all.value().nodes_size(), 2);
  EXPECT_EQ(all.value().revision(), registry_.revision());
  const auto blue = service_.list("blue");
  ASSERT_TRUE(blue.ok());
  ASSERT_EQ(blue.value().nodes_size(), 1);
  EXPECT_EQ(blue.value().nodes(0).name(), "b");
  EXPECT_EQ(blue.value().nodes(0).cluster(), "blue");

  const Error e = errorOf(service_.list("green"));
  EXPECT_EQ(e.code, Code::InvalidArgument);
  EXPECT_EQ(e.message, "no cluster named \"green\" (clusters: default, blue)");
}

TEST_F(ServiceTest, GetsFromTheDefaultClusterOrTheNamedOne) {
  add("a");
  add("b", kBlue);
  const auto a = service_.get("a", "");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a.value().name(), "a");
  EXPECT_EQ(a.value().port(), 4100u);
  ASSERT_TRUE(service_.get("b", "blue").ok());

  Error e = errorOf(service_.get("b", ""));
  EXPECT_EQ(e.code, Code::NotFound) << "\"\" is the default cluster, not every cluster";
  EXPECT_EQ(e.message, "no node named \"b\"");
  e = errorOf(service_.get("a@host1", ""));
  EXPECT_EQ(e.message, "no node named \"a@host1\" (epmd names have no host part: try `a`)");
  EXPECT_EQ(errorOf(service_.get("a", "green")).code, Code::InvalidArgument);
}

TEST_F(ServiceTest, EvictRemovesTheNodeAndNamesWhoAndWhy) {
  const auto a = add("a");
  const auto resp = service_.evict(ops_, "ipv4:127.0.0.1:5000", evictOf("a"));
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp.value().node().name(), "a");
  EXPECT_EQ(resp.value().revision(), registry_.revision());
  EXPECT_FALSE(resp.value().has_hold());
  EXPECT_EQ(registry_.find("a"), nullptr);

  const auto events = service_.listEvents({});
  ASSERT_TRUE(events.ok());
  const auto& last = events.value().events(events.value().events_size() - 1);
  EXPECT_EQ(last.type(), v1::NodeEvent::UNREGISTERED);
  EXPECT_EQ(last.actor(), "ops@127.0.0.1:5000") << "gRPC's ipv4: prefix dropped";
  EXPECT_EQ(last.detail(), "stuck");

  const Error e = errorOf(service_.evict(ops_, "p", evictOf("a")));
  EXPECT_EQ(e.code, Code::NotFound);
  EXPECT_EQ(e.message, "no node named \"a\"");
}

TEST_F(ServiceTest, EvictOfAnotherRegistrationIsRefused) {
  const auto a = add("a");
  auto req = evictOf("a");
  req.set_registration_id(a->id + 100);
  const Error e = errorOf(service_.evict(ops_, "p", req));
  EXPECT_EQ(e.code, Code::FailedPrecondition);
  EXPECT_EQ(e.message,
            "\"a\" is now held by another registration (not " + std::to_string(a->id + 100) + ")");
  EXPECT_NE(registry_.find("a"), nullptr);
  req.set_registration_id(a->id);
  EXPECT_TRUE(service_.evict(ops_, "p", req).ok());
}

TEST_F(ServiceTest, EvictChecksItsArguments) {
  add("a");
  Error e = errorOf(service_.evict(ops_, "p", evictOf("")));
  EXPECT_EQ(e.code, Code::InvalidArgument);
  EXPECT_EQ(e.message, "name is required");

  auto req = evictOf("a");
  req.set_reason(std::string(kMaxReasonBytes + 1, 'r'));
  e = errorOf(service_.evict(ops_, "p", req));
  EXPECT_EQ(e.message, "reason is longer than 256 bytes");

  req = evictOf("a");
  req.set_hold_seconds(kMaxHoldSeconds + 1);
  e = errorOf(service_.evict(ops_, "p", req));
  EXPECT_EQ(e.code, Code::InvalidArgument);
  EXPECT_EQ(e.message, "hold_seconds is over 604800 (a week)");

  e = errorOf(service_.evict(ops_, "p", evictOf("a", "green")));
  EXPECT_EQ(e.message, "no cluster named \"green\" (clusters: default, blue)");
  EXPECT_NE(registry_.find("a"), nullptr) << "no refused call evicted anything";
}

TEST_F(ServiceTest, EvictWithAHoldReservesTheNameUntilLifted) {
  add("b", kBlue);
  auto req = evictOf("b", "blue");
  req.set_hold_seconds(60);
  const auto resp = service_.evict(ops_, "127.0.0.1:1", req);
  ASSERT_TRUE(resp.ok());
  ASSERT_TRUE(resp.value().has_hold());
  EXPECT_EQ(resp.value().hold().name(), "b");
  EXPECT_EQ(registry_.holds().holds.size(), 1u);

  const auto holds = service_.listHolds("blue");
  ASSERT_TRUE(holds.ok());
  ASSERT_EQ(holds.value().holds_size(), 1);
  EXPECT_EQ(holds.value().holds(0).cluster(), "blue");
  EXPECT_EQ(service_.listHolds("").value().holds_size(), 1);
  EXPECT_EQ(service_.listHolds("default").value().holds_size(), 0);

  v1::LiftHoldRequest lift;
  lift.set_name("b");
  lift.set_cluster("blue");
  const auto lifted = service_.liftHold(ops_, "127.0.0.1:1", lift);
  ASSERT_TRUE(lifted.ok());
  EXPECT_EQ(lifted.value().revision(), registry_.revision());
  const Error e = errorOf(service_.liftHold(ops_, "127.0.0.1:1", lift));
  EXPECT_EQ(e.code, Code::NotFound);
  EXPECT_EQ(e.message, "no hold on \"b\" in cluster blue");
}

TEST_F(ServiceTest, ListEventsNewestPagesAndTheirLimits) {
  add("a");
  add("b", kBlue);
  add("c");
  v1::ListEventsRequest req;
  auto resp = service_.listEvents(req);
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp.value().events_size(), 3);
  EXPECT_EQ(resp.value().revision(), registry_.revision());

  req.set_cluster("blue");
  EXPECT_EQ(service_.listEvents(req).value().events_size(), 1);

  req.Clear();
  req.set_after_revision(registry_.revision() - 2);
  req.set_limit(1);
  resp = service_.listEvents(req);
  ASSERT_TRUE(resp.ok());
  ASSERT_EQ(resp.value().events_size(), 1);
  EXPECT_EQ(resp.value().events(0).revision(), registry_.revision() - 1) << "the page after it";

  req.set_limit(kMaxEventsLimit + 1);
  Error e = errorOf(service_.listEvents(req));
  EXPECT_EQ(e.code, Code::InvalidArgument);
  EXPECT_EQ(e.message, "limit 1001 is over 1000");

  req.set_limit(0);
  req.set_after_revision(registry_.revision() + 5);
  e = errorOf(service_.listEvents(req));
  EXPECT_EQ(e.code, Code::InvalidArgument);
  EXPECT_EQ(e.message, "after_revision " + std::to_string(registry_.revision() + 5) +
                           " is in the future (current " + std::to_string(registry_.revision()) +
                           "; did the daemon restart?)");
}

TEST_F(ServiceTest, ListEventsAfterACompactedRevisionIsOutOfRange) {
  for (int i = 0; i < 12; ++i) {  // The history keeps 8.
    add("n" + std::to_string(i));
  }
  v1::ListEventsRequest req;
  req.set_after_revision(1);
  const Error e = errorOf(service_.listEvents(req));
  EXPECT_EQ(e.code, Code::OutOfRange);
  EXPECT_EQ(e.message, "events after revision 1 are no longer kept (oldest 5): list again");
  ASSERT_TRUE(e.window.has_value());
  EXPECT_EQ(e.window->oldest, 5u);
  EXPECT_EQ(e.window->current, 12u);
}

TEST_F(ServiceTest, AuthenticatesByTokenAndScope) {
  const auto ok = service_.authenticate("Bearer admin", Scope::Evict);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok.value().identity, "ops");
  EXPECT_TRUE(service_.authenticate("Bearer reader", Scope::Read).ok());

  Error e = errorOf(service_.authenticate("Bearer reader", Scope::Evict));
  EXPECT_EQ(e.code, Code::PermissionDenied);
  EXPECT_EQ(e.message, "the token lacks the \"evict\" scope");
  e = errorOf(service_.authenticate("", Scope::Read));
  EXPECT_EQ(e.code, Code::Unauthenticated);
  EXPECT_EQ(e.message, "a bearer token is required (authorization: Bearer TOKEN)");
  e = errorOf(service_.authenticate("Bearer nobody", Scope::Read));
  EXPECT_EQ(e.message, "unknown bearer token");
}

TEST_F(ServiceTest, EachSurfaceHasItsOwnWatcherCap) {
  auto g1 = service_.openWatch(Surface::Grpc, {}, {});
  auto g2 = service_.openWatch(Surface::Grpc, {}, {});
  ASSERT_TRUE(g1.ok() && g2.ok());
  EXPECT_EQ(service_.watchers(Surface::Grpc), 2u);
  const Error e = errorOf(service_.openWatch(Surface::Grpc, {}, {}));
  EXPECT_EQ(e.code, Code::ResourceExhausted);
  EXPECT_EQ(e.message, "too many grpc watch streams (--max-watchers=2); try again later");
  EXPECT_EQ(service_.watchers(Surface::Grpc), 2u) << "a refused watch takes no slot";

  auto s1 = service_.openWatch(Surface::Sse, {}, {});
  EXPECT_TRUE(s1.ok()) << "SSE counts its own streams";
  EXPECT_EQ(service_.watchers(Surface::Sse), 1u);

  { auto gone = std::move(g1.value()); }  // The stream ends: its slot is free.
  EXPECT_EQ(service_.watchers(Surface::Grpc), 1u);
  EXPECT_TRUE(service_.openWatch(Surface::Grpc, {}, {}).ok());
}

TEST_F(ServiceTest, OpenWatchChecksItsParameters) {
  WatchParams both{.after = 0, .initial = true, .cluster = "", .source = ""};
  Error e = errorOf(service_.openWatch(Surface::Grpc, both, {}));
  EXPECT_EQ(e.code, Code::InvalidArgument);
  EXPECT_EQ(e.message, "an initial state and a start revision exclude each other");

  e = errorOf(service_.openWatch(
      Surface::Grpc, {.after = std::nullopt, .initial = false, .cluster = "green", .source = ""},
      {}));
  EXPECT_EQ(e.message, "no cluster named \"green\" (clusters: default, blue)");

  add("a");
  e = errorOf(service_.openWatch(Surface::Grpc,
                                 {.after = 5, .initial = false, .cluster = "", .source = ""}, {}));
  EXPECT_EQ(e.code, Code::InvalidArgument);
  EXPECT_EQ(e.message,
            "revision 5 is in the future (current 1; did the daemon restart?): list again");

  for (int i = 0; i < 12; ++i) {
    add("n" + std::to_string(i));
  }
  e = errorOf(service_.openWatch(Surface::Grpc,
                                 {.after = 1, .initial = false, .cluster = "", .source = ""}, {}));
  EXPECT_EQ(e.code, Code::OutOfRange);
  EXPECT_EQ(e.message, "revision 1 is older than the kept history (oldest 6): list again");
  ASSERT_TRUE(e.window.has_value());
  EXPECT_EQ(e.window->current, 13u);
  EXPECT_EQ(service_.watchers(Surface::Grpc), 0u) << "no refused watch keeps a slot";

  service_.beginDrain();
  e = errorOf(service_.openWatch(Surface::Sse, {}, {}));
  EXPECT_EQ(e.code, Code::Unavailable);
  EXPECT_EQ(e.message, "epmdx is shutting down");
}

TEST_F(ServiceTest, OpenWatchWithInitialStateOfOneCluster) {
  add("a");
  add("b", kBlue);
  auto opened = service_.openWatch(
      Surface::Sse, {.after = std::nullopt, .initial = true, .cluster = "blue", .source = ""}, {});
  ASSERT_TRUE(opened.ok());
  auto& cursor = opened.value().cursor;
  const WatchStep initial = cursor.next();
  ASSERT_EQ(initial.kind, WatchStep::Kind::Initial);
  ASSERT_EQ(initial.nodes.size(), 1u);
  EXPECT_EQ(initial.nodes[0]->node.name, "b");
  EXPECT_TRUE(initial.complete);
  EXPECT_EQ(initial.revision, registry_.revision());

  add("c");
  add("d", kBlue);
  const WatchStep step = cursor.next();
  ASSERT_EQ(step.kind, WatchStep::Kind::Events);
  ASSERT_EQ(step.events.size(), 1u);
  EXPECT_EQ(step.events[0].registration->node.name, "d");
}

TEST_F(ServiceTest, OpenWatchAfterARevisionResumesRightAfterIt) {
  add("a");
  const registry::Revision seen = registry_.revision();
  add("b");
  auto opened = service_.openWatch(
      Surface::Grpc, {.after = seen, .initial = false, .cluster = "", .source = ""}, {});
  ASSERT_TRUE(opened.ok());
  const WatchStep step = opened.value().cursor.next();
  ASSERT_EQ(step.kind, WatchStep::Kind::Events);
  ASSERT_EQ(step.events.size(), 1u);
  EXPECT_EQ(step.events[0].revision, seen + 1);
}

TEST_F(ServiceTest, WhatTheHttpAdapterReadsInsteadOfTheRegistry) {
  add("a");
  add("b", kBlue);
  EXPECT_EQ(service_.stats().nodes, 2u);
  EXPECT_EQ(service_.stats().revision, registry_.revision());
  EXPECT_EQ(service_.clusterLabels(), (std::vector<std::string>{"default", "blue"}));
  EXPECT_EQ(service_.clusterNames()(kBlue), "blue");

  std::atomic<int> wakes{0};
  {
    auto watch = service_.subscribe([&] { wakes.fetch_add(1); });
    add("c");
    EXPECT_EQ(wakes.load(), 1) << "woken once per change (notified inline here)";
  }
  add("d");
  EXPECT_EQ(wakes.load(), 1) << "destroying the watch unsubscribed";

  service_.countCut(Surface::Sse);
  EXPECT_EQ(service_.cut(Surface::Sse), 1u);
  EXPECT_EQ(service_.cut(Surface::Grpc), 0u);
}

TEST_F(ServiceTest, ListClustersWithTheirStates) {
  add("a");
  add("b", kBlue);
  add("c", kBlue);
  service_.setClusterStates([] {
    std::vector<ClusterState> states(2);
    states[1].port = 4370;
    states[1].addresses = {"127.0.0.1"};
    states[1].serving = true;
    states[1].lookups_from = "loopback";
    return states;
  });
  const auto resp = service_.listClusters();
  ASSERT_EQ(resp.clusters_size(), 2);
  EXPECT_EQ(resp.clusters(0).name(), "default");
  EXPECT_EQ(resp.clusters(0).nodes(), 1u);
  EXPECT_EQ(resp.clusters(1).name(), "blue");
  EXPECT_EQ(resp.clusters(1).nodes(), 2u);
  EXPECT_EQ(resp.clusters(1).port(), 4370u);
  EXPECT_TRUE(resp.clusters(1).serving());
  EXPECT_EQ(resp.clusters(1).lookups_from(), "loopback");
  EXPECT_FALSE(resp.host().empty());
}

}  // namespace
}  // namespace epmdx::api
