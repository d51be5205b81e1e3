// The fleet relay (build/epmdx-fleet) end to end: real epmdx daemons as its sources, real
// Erlang nodes registered on them, real dnsmasq for discovery; the relay's REST, SSE and gRPC
// API asserted from the outside.

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "epmdx/v1/registry.grpc.pb.h"
#include "tests/support/dnsmasq.h"
#include "tests/support/epmdx_daemon.h"
#include "tests/support/erlang.h"
#include "tests/support/fleet_relay.h"
#include "tests/support/net.h"
#include "tests/support/process.h"
#include "tests/support/sse_client.h"

namespace epmdx::testing {
namespace {

using namespace std::chrono_literals;
namespace pb = epmdx::v1;

int pod_counter = 0;

/// One source daemon with a source name, on ports that survive restart() (the same pod
/// coming back with a new boot epoch).
class Pod {
 public:
  /// `ip` and `grpc` let several pods share one gRPC port on their own loopback addresses
  /// (DNS answers carry addresses, with one port).
  explicit Pod(std::string name, std::string ip = "127.0.0.1", uint16_t grpc = 0)
      : name_(std::move(name)),
        ip_(std::move(ip)),
        epmd_(freePort()),
        grpc_(grpc != 0 ? grpc : freePort()),
        http_(freePort()) {
    tokens_ = "/tmp/epmdx-fleet-pod-" + std::to_string(getpid()) + "-" +
              std::to_string(++pod_counter) + ".tokens";
    std::ofstream(tokens_) << EpmdxDaemon::kAdminToken << " read evict name=relay\n"
                           << EpmdxDaemon::kReaderToken << " read name=reader\n";
    start();
  }
  ~Pod() {
    process_.reset();
    unlink(tokens_.c_str());
  }
  void start() {
    process_ = std::make_unique<Process>(
        std::vector<std::string>{epmdxBinary(), "-port", std::to_string(epmd_),
                                 "--grpc-listen=" + ip_ + ":" + std::to_string(grpc_),
                                 "--http-listen=127.0.0.1:" + std::to_string(http_),
                                 "--tokens-file=" + tokens_, "--instance-name=" + name_});
  }
  bool ready() {
    return waitForPort(epmd_, 10s) && waitForPort(grpc_, 10s, ip_) && waitForPort(http_, 10s);
  }
  void kill9() {
    process_->signal(SIGKILL);
    process_->wait(5s);
  }
  const std::string& name() const { return name_; }
  uint16_t epmd() const { return epmd_; }
  uint16_t grpc() const { return grpc_; }
  uint16_t http() const { return http_; }
  std::string source() const { return "--source=" + ip_ + ":" + std::to_string(grpc_); }

 private:
  std::string name_;
  std::string ip_;
  uint16_t epmd_;
  uint16_t grpc_;
  uint16_t http_;
  std::string tokens_;
  std::unique_ptr<Process> process_;
};

/// A node registered with a raw ALIVE2 on a pod's epmd port, for as long as it lives.
class RawNode {
 public:
  RawNode(uint16_t epmd, const std::string& name, uint16_t port = 40000)
      : fd_(connectTo("127.0.0.1", epmd)) {
    sendAll(fd_, frame(alive2Body(name, port)));
    std::string reply;
    char buf[16];
    for (int i = 0; i < 50 && !wire::parseAlive2Reply(reply); ++i) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0)
        break;
      reply.append(buf, static_cast<size_t>(n));
    }
    auto parsed = wire::parseAlive2Reply(reply);
    ok_ = parsed && parsed->result == 0;
  }
  ~RawNode() { ::close(fd_); }
  bool ok() const { return ok_; }

 private:
  int fd_;
  bool ok_ = false;
};

/// A real Erlang node on a pod's epmd, up until the test ends.
std::unique_ptr<Process> erlNode(uint16_t epmd, const std::string& name) {
  return std::make_unique<Process>(
      std::vector<std::string>{"erl", "-sname", name, "-setcookie", "epmdxfleet", "-noshell",
                               "-start_epmd", "false", "-eval", "timer:sleep(60000), halt()."},
      erlEnv(epmd));
}

struct Http {
  int status = 0;
  std::string body;
};

Http request(uint16_t port, const std::string& method, const std::string& path,
             const std::string& token = "") {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(5, 0);
  httplib::Headers h;
  if (!token.empty())
    h.emplace("Authorization", "Bearer " + token);
  auto r = method == "DELETE" ? c.Delete(path, h) : c.Get(path, h);
  return r ? Http{r->status, r->body} : Http{};
}

template <typename M>
M parse(const std::string& json) {
  M m;
  google::protobuf::util::JsonParseOptions o;
  o.ignore_unknown_fields = true;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &m, o).ok()) << json;
  return m;
}

pb::ListSourcesResponse sources(const FleetRelay& relay) {
  return parse<pb::ListSourcesResponse>(request(relay.httpPort(), "GET", "/v1/sources").body);
}

const pb::Source* findSource(const pb::ListSourcesResponse& l, const std::string& name) {
  for (const auto& s : l.sources()) {
    if (s.name() == name)
      return &s;
  }
  return nullptr;
}

bool sourceIs(const FleetRelay& relay, const std::string& name, pb::SourceState state) {
  const auto l = sources(relay);
  const auto* s = findSource(l, name);
  return s != nullptr && s->state() == state;
}

pb::ListNodesResponse nodes(const FleetRelay& relay, const std::string& query = "") {
  return parse<pb::ListNodesResponse>(request(relay.httpPort(), "GET", "/v1/nodes" + query).body);
}

/// The sources (in list order) that hold a node called `name`, and whether any is stale.
std::vector<std::string> holders(const pb::ListNodesResponse& l, const std::string& name,
                                 bool* stale = nullptr) {
  std::vector<std::string> out;
  for (const auto& n : l.nodes()) {
    if (n.name() == name) {
      out.push_back(n.source());
      if (stale != nullptr)
        *stale = *stale || n.stale();
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::unique_ptr<pb::Registry::Stub> registryStub(uint16_t port) {
  return pb::Registry::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
}

void authorize(grpc::ClientContext& ctx, const std::string& token) {
  ctx.AddMetadata("authorization", "Bearer " + token);
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
}

std::string uniq(const std::string& base) {
  return base + std::to_string(getpid());
}

// Three daemons with real Erlang nodes (one name on two of them) and one address nobody
// listens on: the relay lists every source, merges the nodes with their source, and answers
// the selectors and the ambiguity as documented.
TEST(FleetTest, MergesThreeDaemonsWithRealErlangNodes) {
  Pod a("pod-a"), b("pod-b"), c("pod-c");
  ASSERT_TRUE(a.ready() && b.ready() && c.ready());
  const uint16_t dead = freePort();
  const std::string shared = uniq("shared"), only_c = uniq("onlyc");
  auto n1 = erlNode(a.epmd(), shared);
  auto n2 = erlNode(b.epmd(), shared);
  auto n3 = erlNode(c.epmd(), only_c);
  FleetRelay relay(
      {a.source(), b.source(), c.source(), "--source=127.0.0.1:" + std::to_string(dead)},
      EpmdxDaemon::kAdminToken);
  ASSERT_TRUE(relay.ready());
  ASSERT_TRUE(eventually(
      [&] {
        const auto l = nodes(relay);
        return holders(l, shared) == std::vector<std::string>{"pod-a", "pod-b"} &&
               holders(l, only_c) == std::vector<std::string>{"pod-c"};
      },
      30s))
      << request(relay.httpPort(), "GET", "/v1/nodes").body;

  const auto l = sources(relay);
  for (const auto* name : {"pod-a", "pod-b", "pod-c"}) {
    const auto* s = findSource(l, name);
    ASSERT_NE(s, nullptr) << name;
    EXPECT_EQ(s->state(), pb::LIVE) << name;
    EXPECT_GT(s->boot_epoch(), 0u);
    EXPECT_GT(s->revision(), 0u);
    EXPECT_TRUE(s->since().seconds() > 0);
    EXPECT_EQ(s->discovered_by(), "flag");
    EXPECT_TRUE(s->last_error().empty());
  }
  EXPECT_EQ(findSource(l, "pod-a")->nodes(), 1u);
  // The address nobody answers at: listed by its address, UNAVAILABLE, with why.
  const std::string dead_addr = "127.0.0.1:" + std::to_string(dead);
  const auto* never = findSource(l, dead_addr);
  ASSERT_NE(never, nullptr) << request(relay.httpPort(), "GET", "/v1/sources").body;
  EXPECT_EQ(never->state(), pb::UNAVAILABLE);
  EXPECT_FALSE(never->last_error().empty());
  EXPECT_EQ(never->address(), dead_addr);

  const auto all = nodes(relay);
  EXPECT_EQ(all.coverage().live_size(), 3);
  ASSERT_EQ(all.coverage().unreachable_size(), 1);
  EXPECT_EQ(all.coverage().unreachable(0), dead_addr);
  EXPECT_EQ(all.coverage().warnings_size(), 1);
  for (const auto& n : all.nodes())
    EXPECT_FALSE(n.stale()) << n.name();

  // Selectors.
  const auto only_a = nodes(relay, "?source=pod-a");
  ASSERT_EQ(only_a.nodes_size(), 1);
  EXPECT_EQ(only_a.nodes(0).source(), "pod-a");
  EXPECT_EQ(nodes(relay, "?cluster=nosuchcluster").nodes_size(), 0);
  EXPECT_EQ(request(relay.httpPort(), "GET", "/v1/nodes?partial=abort").status, 503);

  // One name on two sources: ambiguous without a source, the one node with it.
  const auto ambiguous = request(relay.httpPort(), "GET", "/v1/nodes/" + shared);
  EXPECT_EQ(ambiguous.status, 409) << ambiguous.body;
  EXPECT_NE(ambiguous.body.find("FAILED_PRECONDITION"), std::string::npos) << ambiguous.body;
  EXPECT_NE(ambiguous.body.find("pod-a"), std::string::npos) << ambiguous.body;
  EXPECT_NE(ambiguous.body.find("pod-b"), std::string::npos) << ambiguous.body;
  const auto one = request(relay.httpPort(), "GET", "/v1/nodes/" + shared + "?source=pod-b");
  EXPECT_EQ(one.status, 200) << one.body;
  EXPECT_EQ(parse<pb::Node>(one.body).source(), "pod-b");

  // gRPC: Fleet.ListSources on the relay with the read token; UNIMPLEMENTED on a daemon;
  // a daemon's /v1/sources is 404.
  auto fleet = pb::Fleet::NewStub(
      grpc::CreateChannel(relay.grpcAddress(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  authorize(ctx, FleetRelay::kReaderToken);
  pb::ListSourcesResponse listed;
  ASSERT_TRUE(fleet->ListSources(&ctx, {}, &listed).ok());
  EXPECT_EQ(listed.sources_size(), 4);
  auto daemon_fleet = pb::Fleet::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(a.grpc()), grpc::InsecureChannelCredentials()));
  grpc::ClientContext dctx;
  authorize(dctx, EpmdxDaemon::kReaderToken);
  EXPECT_EQ(daemon_fleet->ListSources(&dctx, {}, &listed).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(request(a.http(), "GET", "/v1/sources").status, 404);

  // The relay's clusters are its sources', each where its source serves it (its epmd port).
  const auto clusters =
      parse<pb::ListClustersResponse>(request(relay.httpPort(), "GET", "/v1/clusters").body);
  int seen = 0;
  for (const auto& cl : clusters.clusters()) {
    if (cl.source() == "pod-a") {
      ++seen;
      EXPECT_EQ(cl.name(), "default");
      EXPECT_EQ(cl.port(), a.epmd()) << cl.DebugString();
      EXPECT_TRUE(cl.serving()) << cl.DebugString();
      EXPECT_EQ(cl.nodes(), 1u);
    }
  }
  EXPECT_EQ(seen, 1) << clusters.DebugString();
}

// A token the sources refuse: the source is not LIVE and says UNAUTHENTICATED, never an
// empty LIVE source.
TEST(FleetTest, WrongSourceTokenIsNeverAnEmptyLiveSource) {
  Pod a("pod-a");
  ASSERT_TRUE(a.ready());
  RawNode n(a.epmd(), "tokenvictim");
  ASSERT_TRUE(n.ok());
  FleetRelay relay({a.source()}, "not-the-token");
  ASSERT_TRUE(relay.ready());
  const std::string addr = "127.0.0.1:" + std::to_string(a.grpc());
  ASSERT_TRUE(eventually(
      [&] {
        const auto l = sources(relay);
        return l.sources_size() == 1 &&
               l.sources(0).last_error().find("UNAUTHENTICATED") != std::string::npos;
      },
      15s))
      << request(relay.httpPort(), "GET", "/v1/sources").body;
  const auto s = sources(relay).sources(0);
  EXPECT_NE(s.state(), pb::LIVE);
  EXPECT_TRUE(s.state() == pb::UNAVAILABLE || s.state() == pb::STALE);
  EXPECT_EQ(nodes(relay).nodes_size(), 0);
}

// Evictions go to the one source named, with the caller in the source's actor; a source that
// cannot be reached fails closed.
TEST(FleetTest, EvictRoutesToTheNamedSourceAndFailsClosedWhenStale) {
  Pod a("pod-a"), b("pod-b");
  ASSERT_TRUE(a.ready() && b.ready());
  const std::string name = uniq("evictme");
  auto na = erlNode(a.epmd(), name);
  auto nb = erlNode(b.epmd(), name);
  FleetRelay relay({a.source(), b.source()}, EpmdxDaemon::kAdminToken);
  ASSERT_TRUE(relay.ready());
  ASSERT_TRUE(eventually(
      [&] {
        return holders(nodes(relay), name) == std::vector<std::string>{"pod-a", "pod-b"};
      },
      30s));
  const auto before =
      parse<pb::Node>(request(relay.httpPort(), "GET", "/v1/nodes/" + name + "?source=pod-a").body);

  // Without a token: refused.
  EXPECT_EQ(request(relay.httpPort(), "DELETE", "/v1/nodes/" + name + "?source=pod-a").status, 401);
  const auto evicted = request(relay.httpPort(), "DELETE", "/v1/nodes/" + name + "?source=pod-a",
                               FleetRelay::kAdminToken);
  EXPECT_EQ(evicted.status, 200) << evicted.body;
  // The answer is the relay's: its revision is the one of the UNREGISTERED event the relay's
  // own history and watchers carry (not pod-a's), and the node is named with its source.
  const auto answer = parse<pb::EvictNodeResponse>(evicted.body);
  EXPECT_EQ(answer.node().source(), "pod-a");
  EXPECT_EQ(answer.node().registration_id(), before.registration_id());
  const auto history = parse<pb::ListEventsResponse>(
      request(relay.httpPort(), "GET", "/v1/events?source=pod-a").body);
  uint64_t unregistered_at = 0;
  for (const auto& e : history.events()) {
    if (e.type() == pb::NodeEvent::UNREGISTERED && e.node().name() == name &&
        e.node().registration_id() == before.registration_id()) {
      unregistered_at = e.revision();
    }
  }
  EXPECT_NE(unregistered_at, 0u) << history.DebugString();
  EXPECT_EQ(answer.revision(), unregistered_at) << evicted.body;
  // pod-a's audit names the relay's token and the relay's caller.
  ASSERT_TRUE(eventually(
      [&] {
        const auto ev = request(a.http(), "GET", "/v1/events").body;
        return ev.find("relay") != std::string::npos && ev.find("for") != std::string::npos &&
               ev.find("fleet-admin") != std::string::npos;
      },
      10s))
      << request(a.http(), "GET", "/v1/events").body;
  // pod-b's node never left; pod-a's erl registers again by itself, a new registration.
  EXPECT_EQ(request(b.http(), "GET", "/v1/nodes/" + name).status, 200);
  ASSERT_TRUE(eventually(
      [&] {
        const auto r = request(relay.httpPort(), "GET", "/v1/nodes/" + name + "?source=pod-a");
        return r.status == 200 &&
               parse<pb::Node>(r.body).registration_id() != before.registration_id();
      },
      15s));

  // pod-a dies: its node is kept, stale; an eviction through it is refused (503).
  a.kill9();
  ASSERT_TRUE(eventually([&] { return sourceIs(relay, "pod-a", pb::STALE); }, 5s));
  const auto refused = request(relay.httpPort(), "DELETE", "/v1/nodes/" + name + "?source=pod-a",
                               FleetRelay::kAdminToken);
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_NE(refused.body.find("UNAVAILABLE"), std::string::npos) << refused.body;
}

/// Reads the relay's SSE watch on a thread, keeping every frame.
class SseRecorder {
 public:
  SseRecorder(uint16_t port, std::string path,
              std::vector<std::pair<std::string, std::string>> headers = {})
      : thread_([this, port, path = std::move(path), headers = std::move(headers)] {
          status_ = readSse(port, path, headers, [this](const SseEvent& e) {
            std::lock_guard lock(mu_);
            events_.push_back(e);
            return !stop_;
          });
          done_ = true;
        }) {}
  ~SseRecorder() {
    stop_ = true;
    // The stream ends at its next frame (progress/keep-alive) or when the server goes.
    thread_.detach();
  }
  std::vector<SseEvent> events() {
    std::lock_guard lock(mu_);
    return events_;
  }
  bool any(const std::function<bool(const SseEvent&)>& f) {
    for (const auto& e : events()) {
      if (f(e))
        return true;
    }
    return false;
  }
  int status() const { return status_; }
  bool done() const { return done_; }

 private:
  std::mutex mu_;
  std::vector<SseEvent> events_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> done_{false};
  std::atomic<int> status_{0};
  std::thread thread_;
};

bool has(const std::string& s, const std::string& needle) {
  return s.find(needle) != std::string::npos;
}

// kill -9 one source: its nodes stay, stale, it is STALE within 5 s and the others stay LIVE;
// it comes back on the same ports with a new boot epoch: only it resyncs, with ordinary
// events on the relay's watch (no resync, no 410), and no other source's events meanwhile.
TEST(FleetTest, KilledSourceGoesStaleAndResyncsAlone) {
  Pod a("pod-a"), b("pod-b");
  ASSERT_TRUE(a.ready() && b.ready());
  auto a1 = std::make_unique<RawNode>(a.epmd(), "a-one");
  RawNode b1(b.epmd(), "b-one");
  ASSERT_TRUE(a1->ok() && b1.ok());
  FleetRelay relay({a.source(), b.source()}, EpmdxDaemon::kAdminToken);
  ASSERT_TRUE(relay.ready());
  ASSERT_TRUE(eventually([&] { return nodes(relay).nodes_size() == 2; }, 15s));
  const uint64_t epoch = findSource(sources(relay), "pod-a")->boot_epoch();

  SseRecorder watch(relay.httpPort(), "/v1/watch");
  ASSERT_TRUE(
      eventually([&] { return watch.any([](auto& e) { return e.event == "coverage"; }); }, 10s));
  EXPECT_EQ(watch.events().front().event, "coverage");  // Coverage comes first.

  a.kill9();
  ASSERT_TRUE(eventually([&] { return sourceIs(relay, "pod-a", pb::STALE); }, 5s));
  EXPECT_TRUE(sourceIs(relay, "pod-b", pb::LIVE));
  bool stale = false;
  EXPECT_EQ(holders(nodes(relay), "a-one", &stale), std::vector<std::string>{"pod-a"});
  EXPECT_TRUE(stale);
  stale = false;
  holders(nodes(relay), "b-one", &stale);
  EXPECT_FALSE(stale);
  // The state change reached the watch as a coverage frame naming pod-a unreachable.
  ASSERT_TRUE(eventually(
      [&] {
        return watch.any([](auto& e) {
          return e.event == "coverage" && has(e.data, "pod-a") && has(e.data, "unreachable");
        });
      },
      5s));

  // Back on the same ports, new epoch: a-one registers again at once (the new run's
  // registration id 1, as the old run's was, but another registration: port 40001), and a
  // new node a-two comes. The old a-one leaves (SOURCE_RESYNCED), the new one is the relay's.
  a1.reset();
  const size_t mark = watch.events().size();
  a.start();
  ASSERT_TRUE(a.ready());
  RawNode a1_again(a.epmd(), "a-one", 40001);
  RawNode a2(a.epmd(), "a-two");
  ASSERT_TRUE(a1_again.ok() && a2.ok());
  ASSERT_TRUE(eventually(
      [&] {
        const auto l = nodes(relay);
        bool one_stale = false;
        return holders(l, "a-two") == std::vector<std::string>{"pod-a"} &&
               holders(l, "a-one", &one_stale) == std::vector<std::string>{"pod-a"} && !one_stale &&
               sourceIs(relay, "pod-a", pb::LIVE);
      },
      15s))
      << request(relay.httpPort(), "GET", "/v1/nodes").body;
  const auto again =
      parse<pb::Node>(request(relay.httpPort(), "GET", "/v1/nodes/a-one?source=pod-a").body);
  EXPECT_EQ(again.port(), 40001u) << again.DebugString();  // Not the old run's registration.
  EXPECT_NE(findSource(sources(relay), "pod-a")->boot_epoch(), epoch);
  ASSERT_TRUE(eventually(
      [&] {
        return watch.any([](auto& e) { return has(e.data, "a-two") && has(e.data, "REGISTERED"); });
      },
      5s));
  const auto events = watch.events();
  bool resynced = false;
  for (size_t i = mark; i < events.size(); ++i) {
    const auto& e = events[i];
    EXPECT_NE(e.event, "resync") << e.data;
    EXPECT_FALSE(has(e.data, "b-one")) << e.data;  // Nothing of pod-b meanwhile.
    if (has(e.data, "a-one") && has(e.data, "UNREGISTERED")) {
      EXPECT_TRUE(has(e.data, "SOURCE_RESYNCED")) << e.data;
      resynced = true;
    }
  }
  EXPECT_TRUE(resynced);
  EXPECT_FALSE(watch.done());  // No 410, the stream goes on.
  EXPECT_EQ(holders(nodes(relay), "b-one"), std::vector<std::string>{"pod-b"});
}

// The merged watch resumes from a revision (Last-Event-ID over SSE, after_revision over gRPC,
// with a source selector); a restarted relay answers the old revision with resync /
// OUT_OF_RANGE or INVALID_ARGUMENT.
TEST(FleetTest, WatchResumesAndARestartedRelayAsksForAResync) {
  Pod a("pod-a"), b("pod-b");
  ASSERT_TRUE(a.ready() && b.ready());
  RawNode a1(a.epmd(), "w-a1");
  FleetRelay relay({a.source(), b.source()}, EpmdxDaemon::kAdminToken);
  ASSERT_TRUE(relay.ready());
  ASSERT_TRUE(eventually([&] { return nodes(relay).nodes_size() == 1; }, 15s));
  const uint64_t rev = nodes(relay).revision();
  // Changes after rev, on both sources, in each source's order.
  auto a2 = std::make_unique<RawNode>(a.epmd(), "w-a2");
  RawNode b1(b.epmd(), "w-b1");
  a2.reset();  // w-a2 registers then leaves: pod-a's order is REGISTERED, UNREGISTERED.
  ASSERT_TRUE(eventually(
      [&] {
        const auto l = nodes(relay);
        return l.nodes_size() == 2 && holders(l, "w-a2").empty();
      },
      15s));

  SseRecorder resumed(relay.httpPort(), "/v1/watch", {{"Last-Event-ID", std::to_string(rev)}});
  ASSERT_TRUE(eventually(
      [&] {
        return resumed.any([](auto& e) {
          return has(e.data, "w-a2") && has(e.data, "UNREGISTERED");
        }) && resumed.any([](auto& e) { return has(e.data, "w-b1"); });
      },
      10s));
  int reg = -1, unreg = -1, i = 0;
  for (const auto& e : resumed.events()) {
    if (has(e.data, "w-a2"))
      (has(e.data, "UNREGISTERED") ? unreg : reg) = i;
    EXPECT_FALSE(has(e.data, "w-a1") && has(e.data, "\"REGISTERED\"")) << e.data;  // Before rev.
    ++i;
  }
  EXPECT_GE(reg, 0);
  EXPECT_GT(unreg, reg);

  // gRPC, pod-b only, from rev: w-b1 and nothing of pod-a.
  {
    auto stub = registryStub(relay.grpcPort());
    grpc::ClientContext ctx;
    authorize(ctx, FleetRelay::kReaderToken);
    pb::WatchNodesRequest req;
    req.set_after_revision(rev);
    req.set_source("pod-b");
    auto reader = stub->WatchNodes(&ctx, req);
    pb::WatchNodesResponse msg;
    bool saw_b1 = false;
    while (!saw_b1 && reader->Read(&msg)) {
      for (const auto& e : msg.events()) {
        EXPECT_EQ(e.node().source(), "pod-b") << e.DebugString();
        saw_b1 = saw_b1 || e.node().name() == "w-b1";
      }
    }
    EXPECT_TRUE(saw_b1);
    ctx.TryCancel();
  }

  // A revision of the relay's first run: the new run's history starts after it (revisions
  // start at the start time), so a resume from it is told to list again.
  const uint64_t late = nodes(relay).revision();
  relay.restart();
  ASSERT_TRUE(relay.ready());
  ASSERT_TRUE(eventually([&] { return nodes(relay).nodes_size() == 2; }, 15s));
  SseRecorder stale_resume(relay.httpPort(), "/v1/watch",
                           {{"Last-Event-ID", std::to_string(late)}});
  ASSERT_TRUE(eventually(
      [&] {
        return stale_resume.done() || stale_resume.any([](auto& e) { return e.event == "resync"; });
      },
      10s));
  EXPECT_TRUE(stale_resume.status() == 410 || stale_resume.any([](auto& e) {
    return e.event == "resync";
  })) << stale_resume.status();
  auto stub = registryStub(relay.grpcPort());
  grpc::ClientContext ctx;
  authorize(ctx, FleetRelay::kReaderToken);
  pb::WatchNodesRequest req;
  req.set_after_revision(late);
  auto reader = stub->WatchNodes(&ctx, req);
  pb::WatchNodesResponse msg;
  while (reader->Read(&msg)) {
  }
  const auto st = reader->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::OUT_OF_RANGE) << st.error_message();
}

// A relay whose source is another relay sees the fleet's nodes.
TEST(FleetTest, RelayOfRelays) {
  Pod a("pod-a"), b("pod-b");
  ASSERT_TRUE(a.ready() && b.ready());
  // The same name on two of the inner relay's sources.
  RawNode na(a.epmd(), "deep");
  RawNode nb(b.epmd(), "deep");
  ASSERT_TRUE(na.ok() && nb.ok());
  FleetRelay inner({a.source(), b.source()}, EpmdxDaemon::kAdminToken);
  ASSERT_TRUE(inner.ready());
  FleetRelay outer({"--source=" + inner.grpcAddress()}, FleetRelay::kAdminToken);
  ASSERT_TRUE(outer.ready());
  ASSERT_TRUE(eventually([&] { return nodes(outer).nodes_size() == 2; }, 15s))
      << request(outer.httpPort(), "GET", "/v1/nodes").body;
  const auto l = sources(outer);
  ASSERT_EQ(l.sources_size(), 1);
  EXPECT_EQ(l.sources(0).state(), pb::LIVE);
  // On the outer relay a node's source is the inner relay (what it follows and routes
  // through), and its cluster names the inner relay's source: two nodes, not one.
  std::vector<std::string> clusters;
  const auto merged = nodes(outer);
  for (const auto& n : merged.nodes()) {
    EXPECT_EQ(n.source(), l.sources(0).name());
    EXPECT_EQ(n.name(), "deep");
    clusters.push_back(n.cluster());
  }
  std::sort(clusters.begin(), clusters.end());
  EXPECT_EQ(clusters, (std::vector<std::string>{"pod-a/default", "pod-b/default"}));

  // An eviction through both relays reaches pod-b only.
  const auto evicted = request(outer.httpPort(), "DELETE", "/v1/nodes/deep?cluster=pod-b/default",
                               FleetRelay::kAdminToken);
  EXPECT_EQ(evicted.status, 200) << evicted.body;
  EXPECT_EQ(request(b.http(), "GET", "/v1/nodes/deep").status, 404);
  EXPECT_EQ(request(a.http(), "GET", "/v1/nodes/deep").status, 200);
  ASSERT_TRUE(eventually([&] { return nodes(outer).nodes_size() == 1; }, 10s));
  EXPECT_EQ(nodes(outer).nodes(0).cluster(), "pod-a/default");
}

// Sources from DNS A answers (real dnsmasq): a new answer adds a source; an answer without a
// pod makes it GONE, its nodes leave after --gone-grace; a failed lookup keeps every source.
TEST(FleetTest, DnsDiscoveryAddsDropsAndKeepsSources) {
  Dnsmasq dns;
  const uint16_t port = freePort();
  Pod a("pod-a", "127.0.0.2", port), b("pod-b", "127.0.0.3", port);
  ASSERT_TRUE(a.ready() && b.ready());
  RawNode na(a.epmd(), "dns-a");
  RawNode nb(b.epmd(), "dns-b");
  ASSERT_TRUE(na.ok() && nb.ok());
  const std::string name = "app." + dns.zone();
  dns.setHosts({{name, {"127.0.0.2"}}});
  FleetRelay relay({"--sources-dns=" + name + ":" + std::to_string(port),
                    "--dns-server=" + dns.address(), "--dns-interval=500ms", "--gone-grace=3s"},
                   EpmdxDaemon::kAdminToken);
  ASSERT_TRUE(relay.ready());
  ASSERT_TRUE(eventually([&] { return sourceIs(relay, "pod-a", pb::LIVE); }, 15s))
      << request(relay.httpPort(), "GET", "/v1/sources").body;
  EXPECT_EQ(findSource(sources(relay), "pod-a")->discovered_by(),
            "dns:" + name + ":" + std::to_string(port));
  EXPECT_EQ(sources(relay).sources_size(), 1);

  // A changed answer adds pod-b.
  dns.setHosts({{name, {"127.0.0.2", "127.0.0.3"}}});
  ASSERT_TRUE(eventually([&] { return sourceIs(relay, "pod-b", pb::LIVE); }, 10s));
  ASSERT_TRUE(eventually([&] { return nodes(relay).nodes_size() == 2; }, 10s));

  // A failed lookup (dnsmasq stopped) keeps both, over several intervals. Proving an absence
  // needs a window: the count of queries dnsmasq got shows the relay asked meanwhile.
  dns.pause();
  const auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - t0 < 2500ms) {
    EXPECT_TRUE(sourceIs(relay, "pod-a", pb::LIVE));
    EXPECT_TRUE(sourceIs(relay, "pod-b", pb::LIVE));
    std::this_thread::sleep_for(250ms);  // Sampling a window, not synchronising.
  }
  dns.resume();

  // pod-a leaves the answer: GONE, its node kept stale, then gone after the grace.
  dns.setHosts({{name, {"127.0.0.3"}}});
  ASSERT_TRUE(eventually([&] { return sourceIs(relay, "pod-a", pb::GONE); }, 10s))
      << request(relay.httpPort(), "GET", "/v1/sources").body;
  bool stale = false;
  const auto gone_at = std::chrono::steady_clock::now();
  EXPECT_EQ(holders(nodes(relay), "dns-a", &stale), std::vector<std::string>{"pod-a"});
  EXPECT_TRUE(stale);
  ASSERT_TRUE(eventually([&] { return holders(nodes(relay), "dns-a").empty(); }, 10s));
  EXPECT_GE(std::chrono::steady_clock::now() - gone_at, 2s);  // Not before the grace.
  EXPECT_EQ(findSource(sources(relay), "pod-a"), nullptr);
  EXPECT_EQ(holders(nodes(relay), "dns-b"), std::vector<std::string>{"pod-b"});
}

// --sources-file is re-read on SIGHUP: a source added to the file is followed.
TEST(FleetTest, SourcesFileIsReReadOnSighup) {
  Pod a("pod-a"), b("pod-b");
  ASSERT_TRUE(a.ready() && b.ready());
  const std::string file = "/tmp/epmdx-fleet-sources-" + std::to_string(getpid());
  std::ofstream(file) << "127.0.0.1:" << a.grpc() << "\n";
  FleetRelay relay({"--sources-file=" + file}, EpmdxDaemon::kAdminToken);
  ASSERT_TRUE(relay.ready());
  ASSERT_TRUE(eventually([&] { return sourceIs(relay, "pod-a", pb::LIVE); }, 15s));
  EXPECT_EQ(findSource(sources(relay), "pod-a")->discovered_by(), "file:" + file);
  EXPECT_EQ(findSource(sources(relay), "pod-b"), nullptr);
  std::ofstream(file) << "127.0.0.1:" << a.grpc() << "\n127.0.0.1:" << b.grpc() << "\n";
  relay.process().signal(SIGHUP);
  EXPECT_TRUE(eventually([&] { return sourceIs(relay, "pod-b", pb::LIVE); }, 10s))
      << request(relay.httpPort(), "GET", "/v1/sources").body;
  unlink(file.c_str());
}

}  // namespace
}  // namespace epmdx::testing
