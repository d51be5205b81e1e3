// One gRPC WatchNodes stream (grpc::WatchReactor) through a real gRPC client against the
// in-process App: the initial state in messages of at most kMaxNodesPerMessage nodes, complete
// on the last, then only the watched cluster's changes, and the OUT_OF_RANGE error, with the
// revision delivered, when one burst of changes moved the history past the stream's cursor.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "epmdx/v1/registry.grpc.pb.h"
#include "server/api/service.h"
#include "tests/support/running_app.h"
#include "tests/support/test_nodes.h"

namespace epmdx::testing {
namespace {

using namespace std::chrono_literals;

constexpr const char* kToken = "reactor-reader-token-0123456789";
constexpr size_t kHistory = 64;

class WatchReactorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tokens_ = "/tmp/epmdx-reactor-test-" + std::to_string(getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::ofstream(tokens_) << kToken << " read name=reactor\n";
    auto o = RunningApp::testOptions();
    o.tokens_file = tokens_;
    o.http_listen = "off";
    o.clusters = {{"blue", 0, ""}};
    o.history_size = kHistory;
    app_ = std::make_unique<RunningApp>(o);
    stub_ = v1::Registry::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(app_->app().grpcPort()), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    app_.reset();
    unlink(tokens_.c_str());
  }

  registry::Registry& reg() { return app_->app().registry(); }

  void add(const std::string& name, registry::ClusterId cluster = 0) {
    registry::NodeInfo n = testNode(name, 40000);
    ASSERT_TRUE(reg().add(n, registry::Origin{"127.0.0.1:1", -1, ""}, {}, cluster).ok());
  }

  std::unique_ptr<grpc::ClientContext> ctx() {
    auto c = std::make_unique<grpc::ClientContext>();
    c->AddMetadata("authorization", std::string("Bearer ") + kToken);
    c->set_deadline(std::chrono::system_clock::now() + 20s);
    return c;
  }

  std::string tokens_;
  std::unique_ptr<RunningApp> app_;
  std::unique_ptr<v1::Registry::Stub> stub_;
};

TEST_F(WatchReactorTest, InitialStateInChunksThenTheClustersChanges) {
  const size_t count = 2 * api::kMaxNodesPerMessage + 3;
  for (size_t i = 0; i < count; ++i) {
    add("b" + std::to_string(i), 1);
  }
  add("default-node");
  const registry::Revision listed = reg().revision();

  auto c = ctx();
  v1::WatchNodesRequest req;
  req.set_cluster("blue");
  req.set_send_initial_state(true);
  auto stream = stub_->WatchNodes(c.get(), req);
  std::vector<int> sizes;
  v1::WatchNodesResponse msg;
  while (stream->Read(&msg)) {
    ASSERT_EQ(msg.events_size(), 0);
    EXPECT_EQ(msg.revision(), listed);
    for (const auto& n : msg.initial_nodes()) {
      EXPECT_EQ(n.cluster(), "blue") << "only the watched cluster's nodes";
    }
    sizes.push_back(msg.initial_nodes_size());
    if (msg.initial_state_complete()) {
      break;
    }
  }
  const int chunk = static_cast<int>(api::kMaxNodesPerMessage);
  EXPECT_EQ(sizes, (std::vector<int>{chunk, chunk, 3}));

  add("other");
  add("wanted", 1);
  ASSERT_TRUE(stream->Read(&msg));
  ASSERT_EQ(msg.events_size(), 1) << "the other cluster's change is skipped";
  EXPECT_EQ(msg.events(0).node().name(), "wanted");
  EXPECT_EQ(msg.revision(), reg().revision());
  c->TryCancel();
  while (stream->Read(&msg)) {
  }
  stream->Finish();
}

TEST_F(WatchReactorTest, ABurstPastTheHistoryEndsTheStreamOutOfRange) {
  for (size_t i = 0; i < 2 * kHistory; ++i) {
    add("n" + std::to_string(i));
  }
  auto c = ctx();
  v1::WatchNodesRequest req;
  req.set_send_initial_state(true);
  auto stream = stub_->WatchNodes(c.get(), req);
  v1::WatchNodesResponse msg;
  do {
    ASSERT_TRUE(stream->Read(&msg));
  } while (!msg.initial_state_complete());
  const registry::Revision delivered = msg.revision();

  // One lock, 128 events, one wake-up: the stream's next read finds them compacted away.
  reg().removeAll(registry::UnregisterReason::Stopped);
  ASSERT_EQ(reg().size(), 0u);
  while (stream->Read(&msg)) {
  }
  const grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(status.error_message().rfind("watcher fell behind: changes after revision " +
                                             std::to_string(delivered) + " are no longer kept",
                                         0),
            0u)
      << status.error_message();
}

}  // namespace
}  // namespace epmdx::testing
