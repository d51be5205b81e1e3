// The gRPC admin API in process, over real TCP, with a real gRPC client.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <thread>

#include "epmdx/v1/registry.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "server/api/service.h"
#include "tests/support/net.h"
#include "tests/support/process.h"
#include "tests/support/running_app.h"

namespace epmdx::testing {
namespace {

using namespace std::chrono_literals;

constexpr const char* kAdmin = "admin-token-0123456789";
constexpr const char* kReader = "reader-token-0123456789";

class GrpcApiTest : public ::testing::Test {
 protected:
  void start(size_t history = 16384, size_t max_watchers = 1024,
             std::vector<app::ClusterConfig> clusters = {}) {
    tokens_path_ = "/tmp/epmdx-grpc-test-tokens-" + std::to_string(getpid()) + "-" +
                   ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::ofstream(tokens_path_) << kAdmin << " read evict name=ops\n"
                                << kReader << " read name=dash\n";
    auto o = RunningApp::testOptions();
    o.tokens_file = tokens_path_;
    o.history_size = history;
    o.max_watchers = max_watchers;
    o.http_listen = "off";
    o.clusters = std::move(clusters);
    app_ = std::make_unique<RunningApp>(o);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(app_->app().grpcPort()),
                                   grpc::InsecureChannelCredentials());
    stub_ = v1::Registry::NewStub(channel_);
  }
  void TearDown() override {
    app_.reset();
    if (!tokens_path_.empty()) {
      unlink(tokens_path_.c_str());
    }
  }
  std::unique_ptr<grpc::ClientContext> ctx(const char* token = kAdmin) {
    auto c = std::make_unique<grpc::ClientContext>();
    if (token != nullptr) {
      c->AddMetadata("authorization", std::string("Bearer ") + token);
    }
    c->set_deadline(std::chrono::system_clock::now() + 10s);
    return c;
  }
  int registerNode(const std::string& name, uint16_t port, size_t cluster = 0) {
    const int fd = connectTo("127.0.0.1", app_->app().clusterPort(cluster));
    sendAll(fd, frame(alive2Body(name, port)));
    const std::string r = readN(fd, 6, 2000ms);
    EXPECT_EQ(r.size(), 6u);
    EXPECT_EQ(r[1], 0);
    return fd;
  }
  v1::ListNodesResponse list() {
    v1::ListNodesResponse resp;
    auto c = ctx();
    EXPECT_TRUE(stub_->ListNodes(c.get(), {}, &resp).ok());
    return resp;
  }

  std::string tokens_path_;
  std::unique_ptr<RunningApp> app_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Registry::Stub> stub_;
};

TEST_F(GrpcApiTest, ClustersAreAddressedFilteredAndListed) {
  start(16384, 1024, {{"blue", 0, ""}});  // Port 0: an ephemeral port for the test.
  // Watch blue only, from the start.
  v1::WatchNodesRequest wr;
  wr.set_cluster("blue");
  wr.set_send_initial_state(true);
  auto wc = ctx();
  auto stream = stub_->WatchNodes(wc.get(), wr);
  v1::WatchNodesResponse first;
  ASSERT_TRUE(stream->Read(&first));
  ASSERT_TRUE(first.initial_state_complete());

  const int in_default = registerNode("twin", 5001, 0);
  const int in_blue = registerNode("twin", 5002, 1);  // Same name, other cluster: allowed.
  v1::ListNodesRequest lr;
  lr.set_cluster("blue");
  v1::ListNodesResponse blue;
  auto c1 = ctx();
  ASSERT_TRUE(stub_->ListNodes(c1.get(), lr, &blue).ok());
  ASSERT_EQ(blue.nodes_size(), 1);
  EXPECT_EQ(blue.nodes(0).port(), 5002u);
  EXPECT_EQ(blue.nodes(0).cluster(), "blue");
  EXPECT_EQ(list().nodes_size(), 2);  // No filter: every cluster.

  v1::GetNodeRequest gr;
  gr.set_name("twin");  // No cluster: the default one.
  v1::Node node;
  auto c2 = ctx();
  ASSERT_TRUE(stub_->GetNode(c2.get(), gr, &node).ok());
  EXPECT_EQ(node.port(), 5001u);
  EXPECT_EQ(node.cluster(), "default");

  lr.set_cluster("purple");
  auto c3 = ctx();
  const auto bad = stub_->ListNodes(c3.get(), lr, &blue);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(bad.error_message().find("clusters: default, blue"), std::string::npos)
      << bad.error_message();

  v1::EvictNodeRequest er;
  er.set_name("twin");
  er.set_cluster("blue");
  v1::EvictNodeResponse evicted;
  auto c4 = ctx();
  ASSERT_TRUE(stub_->EvictNode(c4.get(), er, &evicted).ok());
  EXPECT_EQ(evicted.node().port(), 5002u);
  auto c5 = ctx();
  ASSERT_TRUE(stub_->GetNode(c5.get(), gr, &node).ok());  // The default twin stays.
  EXPECT_EQ(node.port(), 5001u);

  // The blue watch saw blue's registration and eviction, nothing of the default cluster.
  std::vector<std::string> seen;
  v1::WatchNodesResponse msg;
  while (seen.size() < 2 && stream->Read(&msg)) {
    for (const auto& e : msg.events()) {
      seen.push_back(e.node().cluster() + ":" + std::to_string(e.node().port()) + ":" +
                     v1::NodeEvent::Type_Name(e.type()));
    }
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"blue:5002:REGISTERED", "blue:5002:UNREGISTERED"}));
  wc->TryCancel();

  v1::ListClustersResponse clusters;
  auto c6 = ctx();
  ASSERT_TRUE(stub_->ListClusters(c6.get(), {}, &clusters).ok());
  ASSERT_EQ(clusters.clusters_size(), 2);
  EXPECT_EQ(clusters.clusters(0).name(), "default");
  EXPECT_EQ(clusters.clusters(0).nodes(), 1u);
  EXPECT_EQ(clusters.clusters(1).name(), "blue");
  EXPECT_EQ(clusters.clusters(1).port(), app_->app().clusterPort(1));
  EXPECT_TRUE(clusters.clusters(1).serving());
  EXPECT_FALSE(clusters.clusters(1).addresses().empty());
  close(in_default);
  close(in_blue);
}

TEST_F(GrpcApiTest, ListAndGetShowEveryField) {
  start();
  const int fd = registerNode("alpha", 4242);
  const auto resp = list();
  ASSERT_EQ(resp.nodes_size(), 1);
  const auto& n = resp.nodes(0);
  EXPECT_EQ(n.name(), "alpha");
  EXPECT_EQ(n.port(), 4242u);
  EXPECT_EQ(n.node_type(), v1::NODE_TYPE_NORMAL);
  EXPECT_EQ(n.node_type_raw(), 77u);
  EXPECT_EQ(n.highest_version(), 6u);
  EXPECT_EQ(n.lowest_version(), 5u);
  EXPECT_GE(n.creation(), 4u);
  EXPECT_GT(n.registration_id(), 0u);
  EXPECT_EQ(n.peer_address().rfind("127.0.0.1:", 0), 0u);
  EXPECT_GT(n.registered_at().seconds(), 1700000000);
  EXPECT_EQ(n.create_revision(), 1u);
  EXPECT_EQ(resp.revision(), 1u);
  v1::GetNodeRequest req;
  req.set_name("alpha");
  v1::Node got;
  auto c = ctx(kReader);
  ASSERT_TRUE(stub_->GetNode(c.get(), req, &got).ok());
  EXPECT_EQ(got.SerializeAsString(), n.SerializeAsString());
  req.set_name("nosuch");
  auto c2 = ctx();
  EXPECT_EQ(stub_->GetNode(c2.get(), req, &got).error_code(), grpc::StatusCode::NOT_FOUND);
  close(fd);
}

// ListEvents maps api::Service::listEvents (tests/http_api_test.cc covers its rules): the
// events equal the watch's, byte for byte, and errors keep their codes.
TEST_F(GrpcApiTest, ListEventsIsTheWatchedHistory) {
  start(/*history=*/6, 1024, {{"blue", 0, ""}});
  const int a = registerNode("a", 5001, 0);
  const int b = registerNode("b", 5002, 1);
  close(a);
  v1::WatchNodesRequest wr;
  wr.set_after_revision(0);
  auto wc = ctx(kReader);
  auto stream = stub_->WatchNodes(wc.get(), wr);
  std::vector<v1::NodeEvent> watched;
  while (watched.size() < 3) {
    v1::WatchNodesResponse msg;
    ASSERT_TRUE(stream->Read(&msg));
    watched.insert(watched.end(), msg.events().begin(), msg.events().end());
  }
  wc->TryCancel();
  v1::ListEventsResponse resp;
  auto c = ctx(kReader);
  const auto listed = stub_->ListEvents(c.get(), {}, &resp);
  ASSERT_TRUE(listed.ok()) << listed.error_code() << " " << listed.error_message();
  ASSERT_EQ(resp.events_size(), 3);
  EXPECT_EQ(resp.revision(), 3u);
  EXPECT_EQ(resp.oldest_revision(), 1u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(resp.events(i).SerializeAsString(), watched[i].SerializeAsString()) << i;
  }
  v1::ListEventsRequest blue;
  blue.set_cluster("blue");
  auto cb = ctx(kReader);
  ASSERT_TRUE(stub_->ListEvents(cb.get(), blue, &resp).ok());
  ASSERT_EQ(resp.events_size(), 1);
  EXPECT_EQ(resp.events(0).node().name(), "b");
  v1::ListEventsRequest over;
  over.set_limit(1001);
  auto co = ctx(kReader);
  const auto too_many = stub_->ListEvents(co.get(), over, &resp);
  EXPECT_EQ(too_many.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(too_many.error_message(), "limit 1001 is over 1000");
  auto cn = ctx(nullptr);
  EXPECT_EQ(stub_->ListEvents(cn.get(), {}, &resp).error_code(), grpc::StatusCode::UNAUTHENTICATED);

  // Six more (3 registered, 3 gone): 9 made, 6 kept, the oldest is 4.
  for (int i = 0; i < 3; ++i) {
    close(registerNode("p" + std::to_string(i), 5100));
  }
  auto page = [&](uint64_t after, uint32_t limit) {
    v1::ListEventsRequest req;
    req.set_after_revision(after);
    req.set_limit(limit);
    v1::ListEventsResponse out;
    auto cp = ctx(kReader);
    const auto st = stub_->ListEvents(cp.get(), req, &out);
    return std::make_pair(st, out);
  };
  ASSERT_TRUE(eventually([&] { return page(8, 10).second.events_size() == 1; }));
  // Paging after the last one seen, 2 at a time: three pages, every event exactly once.
  std::vector<uint64_t> paged;
  uint64_t after = 3;
  for (int p = 0; p < 3; ++p) {
    const auto [st, got] = page(after, 2);
    ASSERT_TRUE(st.ok()) << st.error_message();
    ASSERT_EQ(got.events_size(), 2) << "page " << p;
    EXPECT_EQ(got.oldest_revision(), 4u);
    for (const auto& e : got.events()) {
      paged.push_back(e.revision());
    }
    after = got.events(1).revision();
  }
  EXPECT_EQ(paged, (std::vector<uint64_t>{4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(page(after, 2).second.events_size(), 0);
  // Events after revision 2 are gone (3 was compacted away): OUT_OF_RANGE, not the rest.
  const auto [gone, gone_resp] = page(2, 2);
  EXPECT_EQ(gone.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_NE(gone.error_message().find("no longer kept (oldest 4)"), std::string::npos)
      << gone.error_message();
  EXPECT_EQ(gone_resp.events_size(), 0);
  close(b);
}

TEST_F(GrpcApiTest, AuthFailuresChangeNothing) {
  start();
  const int fd = registerNode("keep", 1);
  v1::ListNodesResponse resp;
  auto none = ctx(nullptr);
  EXPECT_EQ(stub_->ListNodes(none.get(), {}, &resp).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  auto wrong = ctx("not-a-token");
  EXPECT_EQ(stub_->ListNodes(wrong.get(), {}, &resp).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  v1::EvictNodeRequest ev;
  ev.set_name("keep");
  v1::EvictNodeResponse er;
  auto reader = ctx(kReader);
  EXPECT_EQ(stub_->EvictNode(reader.get(), ev, &er).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  auto anon = ctx(nullptr);
  EXPECT_EQ(stub_->EvictNode(anon.get(), ev, &er).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  auto w = ctx(nullptr);
  auto stream = stub_->WatchNodes(w.get(), {});
  v1::WatchNodesResponse msg;
  EXPECT_FALSE(stream->Read(&msg));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  const auto after = list();
  ASSERT_EQ(after.nodes_size(), 1);
  EXPECT_EQ(after.revision(), 1u);
  EXPECT_FALSE(readUntilClose(fd, 200ms).closed);  // The node's connection is untouched.
  close(fd);
}

TEST_F(GrpcApiTest, EvictFreesTheNameOnTheWire) {
  start();
  const int fd = registerNode("hung", 7);
  const uint64_t id = list().nodes(0).registration_id();
  v1::EvictNodeRequest ev;
  ev.set_name("hung");
  ev.set_registration_id(id + 1);
  v1::EvictNodeResponse er;
  auto c1 = ctx();
  EXPECT_EQ(stub_->EvictNode(c1.get(), ev, &er).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  ev.set_registration_id(id);
  ev.set_reason("name is already in use after a hang");
  auto c2 = ctx();
  ASSERT_TRUE(stub_->EvictNode(c2.get(), ev, &er).ok());
  EXPECT_EQ(er.node().registration_id(), id);
  EXPECT_EQ(er.revision(), 2u);
  EXPECT_TRUE(readUntilClose(fd, 2000ms).closed);  // The node's epmd connection is closed.
  close(fd);
  const int again = registerNode("hung", 8);  // The name is free at once.
  auto c3 = ctx();
  v1::EvictNodeRequest missing;
  missing.set_name("nosuch");
  EXPECT_EQ(stub_->EvictNode(c3.get(), missing, &er).error_code(), grpc::StatusCode::NOT_FOUND);
  close(again);
}

TEST_F(GrpcApiTest, WatchReportsEvictionWithWhoAndWhy) {
  start();
  const int fd = registerNode("victim", 9);
  const auto l = list();
  auto wc = ctx(kReader);
  v1::WatchNodesRequest wr;
  wr.set_after_revision(l.revision());
  auto stream = stub_->WatchNodes(wc.get(), wr);
  v1::EvictNodeRequest ev;
  ev.set_name("victim");
  ev.set_reason("stuck");
  v1::EvictNodeResponse er;
  auto c = ctx();
  ASSERT_TRUE(stub_->EvictNode(c.get(), ev, &er).ok());
  v1::WatchNodesResponse msg;
  do {
    ASSERT_TRUE(stream->Read(&msg));
  } while (msg.events_size() == 0);
  ASSERT_EQ(msg.events_size(), 1);
  const auto& e = msg.events(0);
  EXPECT_EQ(e.type(), v1::NodeEvent::UNREGISTERED);
  EXPECT_EQ(e.reason(), v1::EVICTED);
  EXPECT_EQ(e.revision(), l.revision() + 1);
  // One form on every surface: "ops@127.0.0.1:PORT", as over HTTP, not
  // gRPC's "ops@ipv4:127.0.0.1:PORT".
  EXPECT_EQ(e.actor().rfind("ops@127.0.0.1:", 0), 0u) << e.actor();
  EXPECT_EQ(e.detail(), "stuck");
  EXPECT_EQ(e.node().name(), "victim");
  EXPECT_EQ(msg.revision(), e.revision());
  wc->TryCancel();
  close(fd);
}

TEST(PeerAddress, OneFormForGrpcAndHttpPeers) {
  EXPECT_EQ(api::peerAddress("ipv4:127.0.0.1:53316"), "127.0.0.1:53316");
  EXPECT_EQ(api::peerAddress("ipv6:[::1]:53316"), "[::1]:53316");
  EXPECT_EQ(api::peerAddress("ipv6:%5B::1%5D:53316"), "[::1]:53316");
  EXPECT_EQ(api::peerAddress("127.0.0.1:43212"), "127.0.0.1:43212");  // HTTP's, unchanged.
  EXPECT_EQ(api::peerAddress("[::1]:43212"), "[::1]:43212");
}

// The List-then-Watch contract under heavy churn over the epmd wire: replaying the watch
// over the List gives exactly the final List, with revisions in order, no gap, no repeat.
TEST_F(GrpcApiTest, WatchFromListRevisionLosesAndRepeatsNothingUnderChurn) {
  start();
  std::vector<int> seeds;
  for (int i = 0; i < 20; ++i) {
    seeds.push_back(registerNode("seed" + std::to_string(i), 100 + i));
  }
  const auto l = list();
  std::map<std::string, uint64_t> state;
  for (const auto& n : l.nodes()) {
    state[n.name()] = n.registration_id();
  }
  auto wc = ctx(kReader);
  v1::WatchNodesRequest wr;
  wr.set_after_revision(l.revision());
  auto stream = stub_->WatchNodes(wc.get(), wr);
  constexpr int kThreads = 4;
  constexpr int kCycles = 300;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t] {
      std::vector<int> held;
      for (int i = 0; i < kCycles; ++i) {
        const int fd = connectTo("127.0.0.1", app_->port());
        sendAll(fd, frame(alive2Body("c" + std::to_string(t) + "-" + std::to_string(i % 40),
                                     static_cast<uint16_t>(1000 + i))));
        readN(fd, 6, 2000ms);
        if (i % 4 == 0) {
          held.push_back(fd);  // Some stay registered.
        } else {
          close(fd);
        }
      }
      for (size_t k = 0; k < held.size(); k += 2) {
        close(held[k]);
      }
    });
  }
  for (int i = 0; i < 20; i += 3) {
    close(seeds[i]);
  }
  for (auto& th : threads) {
    th.join();
  }
  // Let the registry settle (closes are asynchronous), then read the watch up to it.
  uint64_t final_rev = 0;
  for (int stable = 0; stable < 3;) {
    const uint64_t r = list().revision();
    stable = r == final_rev ? stable + 1 : 0;
    final_rev = r;
    std::this_thread::sleep_for(50ms);  // Polling for quiescence with a bound (3 equal reads).
  }
  const auto final_list = list();
  uint64_t expect = l.revision() + 1;
  v1::WatchNodesResponse msg;
  while (expect <= final_list.revision()) {
    ASSERT_TRUE(stream->Read(&msg));
    for (const auto& e : msg.events()) {
      ASSERT_EQ(e.revision(), expect++);
      if (e.type() == v1::NodeEvent::REGISTERED) {
        ASSERT_TRUE(state.emplace(e.node().name(), e.node().registration_id()).second);
      } else {
        auto it = state.find(e.node().name());
        ASSERT_NE(it, state.end());
        ASSERT_EQ(it->second, e.node().registration_id());
        state.erase(it);
      }
    }
  }
  std::map<std::string, uint64_t> fresh;
  for (const auto& n : final_list.nodes()) {
    fresh[n.name()] = n.registration_id();
  }
  EXPECT_EQ(state, fresh);
  EXPECT_GT(expect - l.revision(), 1000u);  // Heavy churn really happened.
  wc->TryCancel();
  for (size_t i = 0; i < seeds.size(); ++i) {
    if (i % 3 != 0) {
      close(seeds[i]);
    }
  }
}

TEST_F(GrpcApiTest, InitialStateThenChanges) {
  start();
  const int a = registerNode("a", 1);
  const int b = registerNode("b", 2);
  auto wc = ctx(kReader);
  v1::WatchNodesRequest wr;
  wr.set_send_initial_state(true);
  auto stream = stub_->WatchNodes(wc.get(), wr);
  v1::WatchNodesResponse msg;
  ASSERT_TRUE(stream->Read(&msg));
  EXPECT_EQ(msg.initial_nodes_size(), 2);
  EXPECT_TRUE(msg.initial_state_complete());
  EXPECT_EQ(msg.revision(), 2u);
  const int c = registerNode("c", 3);
  do {
    ASSERT_TRUE(stream->Read(&msg));
  } while (msg.events_size() == 0);
  EXPECT_EQ(msg.events(0).node().name(), "c");
  EXPECT_EQ(msg.events(0).revision(), 3u);
  wc->TryCancel();
  close(a);
  close(b);
  close(c);
}

TEST_F(GrpcApiTest, RevisionOutsideTheHistory) {
  start(/*history=*/8);
  std::vector<int> fds;
  for (int i = 0; i < 20; ++i) {
    fds.push_back(registerNode("n" + std::to_string(i), 1));
  }
  auto wc = ctx(kReader);
  v1::WatchNodesRequest wr;
  wr.set_after_revision(2);
  auto stream = stub_->WatchNodes(wc.get(), wr);
  v1::WatchNodesResponse msg;
  EXPECT_FALSE(stream->Read(&msg));
  const auto st = stream->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_NE(st.error_message().find("list again"), std::string::npos);
  auto wc2 = ctx(kReader);
  wr.set_after_revision(1000);
  auto future = stub_->WatchNodes(wc2.get(), wr);
  EXPECT_FALSE(future->Read(&msg));
  EXPECT_EQ(future->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  for (int fd : fds) {
    close(fd);
  }
}

// A watcher that stops reading cannot hold registrations up; when it reads again it is
// told it fell behind.
TEST_F(GrpcApiTest, SlowWatcherIsCutOffWhileRegistrationsFlow) {
  start(/*history=*/64);
  // A client with a small HTTP/2 window that stays small: it really stops taking data.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 1024);
  auto slow_channel =
      grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(app_->app().grpcPort()),
                                grpc::InsecureChannelCredentials(), args);
  auto slow = v1::Registry::NewStub(slow_channel);
  auto wc = ctx(kReader);
  v1::WatchNodesRequest wr;
  wr.set_after_revision(0);
  auto stream = slow->WatchNodes(wc.get(), wr);
  // Churn far past the history while the client does not read.
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 3000; ++i) {
    const int fd = registerNode("churn" + std::to_string(i), 1);
    close(fd);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 30s);
  v1::WatchNodesResponse msg;
  while (stream->Read(&msg)) {
  }
  const auto st = stream->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_NE(st.error_message().find("fell behind"), std::string::npos) << st.error_message();
}

TEST_F(GrpcApiTest, ProgressMessagesOnAnIdleStream) {
  start();
  const int fd = registerNode("x", 1);
  auto wc = ctx(kReader);
  v1::WatchNodesRequest wr;
  wr.set_progress_interval_ms(100);
  auto stream = stub_->WatchNodes(wc.get(), wr);
  v1::WatchNodesResponse msg;
  ASSERT_TRUE(stream->Read(&msg));
  EXPECT_EQ(msg.events_size(), 0);
  EXPECT_EQ(msg.revision(), 1u);
  wc->TryCancel();
  close(fd);
}

TEST_F(GrpcApiTest, WatcherLimit) {
  start(16384, /*max_watchers=*/1);
  auto w1 = ctx(kReader);
  v1::WatchNodesRequest wr;
  wr.set_progress_interval_ms(100);
  auto s1 = stub_->WatchNodes(w1.get(), wr);
  v1::WatchNodesResponse msg;
  ASSERT_TRUE(s1->Read(&msg));  // The first stream is up.
  auto w2 = ctx(kReader);
  auto s2 = stub_->WatchNodes(w2.get(), wr);
  EXPECT_FALSE(s2->Read(&msg));
  EXPECT_EQ(s2->Finish().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  w1->TryCancel();
}

TEST_F(GrpcApiTest, ShutdownEndsWatchesWithUnavailable) {
  start();
  auto wc = ctx(kReader);
  v1::WatchNodesRequest wr;
  wr.set_progress_interval_ms(100);
  auto stream = stub_->WatchNodes(wc.get(), wr);
  v1::WatchNodesResponse msg;
  ASSERT_TRUE(stream->Read(&msg));
  app_->app().requestShutdown(0, registry::UnregisterReason::Shutdown);
  while (stream->Read(&msg)) {
  }
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(GrpcApiTest, HealthCheckAndWatchFollowTheDrain) {
  start();
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  auto c1 = ctx(nullptr);  // Health needs no token (probes).
  ASSERT_TRUE(health->Check(c1.get(), req, &resp).ok());
  EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  req.set_service("no.such.Service");
  auto c2 = ctx(nullptr);
  EXPECT_EQ(health->Check(c2.get(), req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);

  req.set_service("epmdx.v1.Registry");
  grpc::ClientContext wc;
  auto stream = health->Watch(&wc, req);
  ASSERT_TRUE(stream->Read(&resp));
  EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  app_->app().requestShutdown(0, registry::UnregisterReason::Shutdown);
  ASSERT_TRUE(stream->Read(&resp));  // The drain is announced before the stream ends.
  EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  while (stream->Read(&resp)) {
  }
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace epmdx::testing
