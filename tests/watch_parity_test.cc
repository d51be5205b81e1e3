// Watch parity between the surfaces: a watch of one cluster while another cluster churns gets
// its cluster's next change as fast over gRPC as over SSE. Both read through one cursor
// (api::WatchCursor), which reads on past other clusters' changes at once; before it, the gRPC
// stream read one batch per wake-up and waited for its 100 ms tick for the rest.
//
// In process (the real App), with a real gRPC client and a real HTTP client. Each trial:
// the other cluster's nodes all go at once (removeAll: thousands of events and one wake-up),
// then a node registers in the watched cluster; each client stamps the moment it sees it.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <thread>

#include "epmdx/v1/registry.grpc.pb.h"
#include "tests/support/running_app.h"
#include "tests/support/sse_client.h"
#include "tests/support/test_nodes.h"

namespace epmdx::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kToken = "parity-reader-token-0123456789";
constexpr int kTrials = 9;
constexpr int kChurn = 2048;  // Other-cluster events per trial: 8 batches of 256.

/// When each watched node's REGISTERED event reached a client, by name.
class Arrivals {
 public:
  void seen(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    at_.emplace(name, Clock::now());
    cv_.notify_all();
  }
  /// The arrival of `name`, waiting at most `timeout` for it.
  std::optional<Clock::time_point> wait(const std::string& name, Clock::duration timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return at_.count(name) > 0; })) {
      return std::nullopt;
    }
    return at_[name];
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Clock::time_point> at_;
};

std::string nodeName(int trial) {
  return "parity-" + std::to_string(trial);
}

class WatchParityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tokens_ = "/tmp/epmdx-parity-test-" + std::to_string(getpid());
    std::ofstream(tokens_) << kToken << " read name=parity\n";
    auto o = RunningApp::testOptions();
    o.tokens_file = tokens_;
    o.clusters = {{"churn", 0, ""}};
    o.history_size = 4 * kChurn;
    app_ = std::make_unique<RunningApp>(o);
  }
  void TearDown() override {
    app_.reset();
    unlink(tokens_.c_str());
  }

  registry::Registry& reg() { return app_->app().registry(); }

  void add(const std::string& name, registry::ClusterId cluster) {
    registry::NodeInfo n = testNode(name, 40000);
    ASSERT_TRUE(reg().add(n, registry::Origin{"127.0.0.1:1", -1, ""}, {}, cluster).ok());
  }

  std::string tokens_;
  std::unique_ptr<RunningApp> app_;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

TEST_F(WatchParityTest, OtherClustersChurnDelaysNeitherGrpcNorSse) {
  Arrivals grpc_seen;
  Arrivals sse_seen;
  std::atomic<bool> done{false};

  // gRPC: a watch of the default cluster, from now (its first message is the empty initial
  // state, which says the stream is open).
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(app_->app().grpcPort()),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::Registry::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", std::string("Bearer ") + kToken);
  v1::WatchNodesRequest req;
  req.set_cluster("default");
  req.set_send_initial_state(true);
  auto stream = stub->WatchNodes(&ctx, req);
  v1::WatchNodesResponse first;
  ASSERT_TRUE(stream->Read(&first));
  ASSERT_TRUE(first.initial_state_complete());
  std::thread grpc_reader([&] {
    v1::WatchNodesResponse msg;
    while (stream->Read(&msg)) {
      for (const auto& e : msg.events()) {
        if (e.type() == v1::NodeEvent::REGISTERED) {
          grpc_seen.seen(e.node().name());
        }
      }
    }
  });

  // SSE: the same watch; the initial frame says the stream is open.
  std::atomic<bool> sse_open{false};
  std::thread sse_reader([&] {
    readSse(app_->app().httpPort(),
            std::string("/v1/watch?cluster=default&initial=true&heartbeat_ms=100&access_token=") +
                kToken,
            {}, [&](const SseEvent& e) {
              if (e.event == "initial") {
                sse_open = true;
              }
              const std::string key = "\"name\":\"";
              const size_t at = e.data.find(key);
              if (e.event == "change" &&
                  e.data.find("\"type\":\"REGISTERED\"") != std::string::npos &&
                  at != std::string::npos) {
                const size_t from = at + key.size();
                sse_seen.seen(e.data.substr(from, e.data.find('"', from) - from));
              }
              return !done.load();
            });
  });
  const auto open_by = Clock::now() + 10s;
  while (!sse_open && Clock::now() < open_by) {
    std::this_thread::yield();
  }
  ASSERT_TRUE(sse_open);

  std::vector<double> grpc_ms;
  std::vector<double> sse_ms;
  for (int t = 0; t < kTrials; ++t) {
    for (int i = 0; i < kChurn; ++i) {
      add("churn-" + std::to_string(t) + "-" + std::to_string(i), 1);
    }
    // Both clients are past the churn's registrations once they see this trial's warm-up.
    const std::string warm = "warm-" + std::to_string(t);
    add(warm, registry::kDefaultCluster);
    ASSERT_TRUE(grpc_seen.wait(warm, 10s)) << "trial " << t;
    ASSERT_TRUE(sse_seen.wait(warm, 10s)) << "trial " << t;
    // The churn: every node of the other cluster goes in one change of the registry.
    reg().removeAll(registry::UnregisterReason::Stopped, registry::ClusterId{1});
    const auto t0 = Clock::now();
    add(nodeName(t), registry::kDefaultCluster);
    auto g = grpc_seen.wait(nodeName(t), 10s);
    auto s = sse_seen.wait(nodeName(t), 10s);
    ASSERT_TRUE(g && s) << "trial " << t;
    grpc_ms.push_back(std::chrono::duration<double, std::milli>(*g - t0).count());
    sse_ms.push_back(std::chrono::duration<double, std::milli>(*s - t0).count());
  }
  done = true;
  ctx.TryCancel();
  grpc_reader.join();
  sse_reader.join();

  const double g = median(grpc_ms);
  const double s = median(sse_ms);
  std::printf("median latency of the watched cluster's change: gRPC %.1f ms, SSE %.1f ms\n", g, s);
  // The 100 ms progress tick must play no part: gRPC reads on at once, as SSE does.
  EXPECT_LT(g, 40.0);
  EXPECT_LT(g, s + 25.0);
}

}  // namespace
}  // namespace epmdx::testing
