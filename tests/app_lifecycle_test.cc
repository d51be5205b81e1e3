// The whole daemon in process, from construction to destruction: the epmd listener and the
// admin servers on ephemeral ports, nodes registered over the epmd wire, a gRPC watch and
// an SSE watch open, a shutdown, then the App destroyed. The process binary ends with
// _Exit (it does not wait for idle keep-alive connections), so LeakSanitizer never sees
// its memory; this test does, under the ASan build (`cmake --preset asan`, ctest -L unit):
// it asks LeakSanitizer for a leak check right after the App is gone.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <future>
#include <thread>

#include "epmdx/v1/registry.grpc.pb.h"
#include "server/app/app.h"
#include "tests/support/net.h"
#include "tests/support/running_app.h"
#include "tests/support/sse_client.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define EPMDX_LSAN 1
#endif

namespace epmdx::testing {
namespace {

using namespace std::chrono_literals;

constexpr const char* kToken = "lifecycle-token-0123456789";

int registerNode(uint16_t port, const std::string& name, uint16_t node_port) {
  const int fd = connectTo("127.0.0.1", port);
  sendAll(fd, frame(alive2Body(name, node_port)));
  const std::string r = readN(fd, 6, 2000ms);
  EXPECT_EQ(r.size(), 6u);
  EXPECT_EQ(r.size() == 6 ? r[1] : -1, 0) << name;
  return fd;
}

TEST(AppLifecycleTest, ServesShutsDownAndIsDestroyedWithoutLeaks) {
  const std::string tokens = "/tmp/epmdx-lifecycle-tokens-" + std::to_string(getpid());
  std::ofstream(tokens) << kToken << " read evict name=lifecycle\n";
  auto o = RunningApp::testOptions();
  o.tokens_file = tokens;
  auto app = std::make_unique<app::App>(o);
  ASSERT_FALSE(app->bind().has_value());
  std::promise<int> exited;
  auto exit_code = exited.get_future();
  std::thread runner([&app, &exited] { exited.set_value(app->run(false)); });

  std::vector<int> nodes;
  for (int i = 0; i < 3; ++i) {
    nodes.push_back(registerNode(app->epmdPort(), "life" + std::to_string(i), 4000 + i));
  }

  // A gRPC watch with the initial state, then one live event.
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(app->grpcPort()),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::Registry::NewStub(channel);
  grpc::ClientContext wc;
  wc.AddMetadata("authorization", std::string("Bearer ") + kToken);
  v1::WatchNodesRequest wr;
  wr.set_send_initial_state(true);
  auto stream = stub->WatchNodes(&wc, wr);
  v1::WatchNodesResponse msg;
  int initial = 0;
  while (stream->Read(&msg)) {
    initial += msg.initial_nodes_size();
    if (msg.initial_state_complete()) {
      break;
    }
  }
  EXPECT_EQ(initial, 3);

  // An SSE watch on the HTTP port, on its own thread until the daemon ends it.
  std::atomic<int> sse_events{0};
  std::promise<int> sse_status;
  auto sse_done = sse_status.get_future();
  std::thread sse([&] {
    sse_status.set_value(
        readSse(app->httpPort(), "/v1/watch?initial=true", {}, [&sse_events](const SseEvent& e) {
          if (e.event == "initial" || e.event == "change") {
            ++sse_events;
          }
          return true;
        }));
  });

  const auto sawSse = [&sse_events](int n) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (sse_events.load() < n && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(5ms);  // Polling a condition, with a deadline.
    }
    return sse_events.load() >= n;
  };
  EXPECT_TRUE(sawSse(1)) << "no initial SSE event";

  nodes.push_back(registerNode(app->epmdPort(), "life3", 4003));
  do {
    ASSERT_TRUE(stream->Read(&msg));
  } while (msg.events_size() == 0);
  EXPECT_EQ(msg.events(0).type(), v1::NodeEvent::REGISTERED);
  EXPECT_EQ(msg.events(0).node().name(), "life3");

  // An eviction crosses from the gRPC thread to the epmd thread (a posted close).
  v1::EvictNodeRequest ev;
  ev.set_name("life0");
  v1::EvictNodeResponse er;
  grpc::ClientContext ec;
  ec.AddMetadata("authorization", std::string("Bearer ") + kToken);
  ASSERT_TRUE(stub->EvictNode(&ec, ev, &er).ok());
  EXPECT_TRUE(readUntilClose(nodes[0], 2000ms).closed);

  // The SSE client has seen both changes (life3 registered, life0 evicted).
  EXPECT_TRUE(sawSse(3)) << sse_events.load() << " SSE events";

  app->requestShutdown(0, registry::UnregisterReason::Shutdown);
  ASSERT_EQ(exit_code.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(exit_code.get(), 0);
  runner.join();
  // Every stream ended and every registration was removed, by the daemon.
  while (stream->Read(&msg)) {
  }
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  ASSERT_EQ(sse_done.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(sse_done.get(), 200);
  sse.join();
  EXPECT_EQ(app->registry().size(), 0u);

  app.reset();
  // The registrations' connections close with the App at the latest.
  for (size_t i = 1; i < nodes.size(); ++i) {
    EXPECT_TRUE(readUntilClose(nodes[i], 2000ms).closed) << i;
  }
  for (int fd : nodes) {
    close(fd);
  }
  stream.reset();
  stub.reset();
  channel.reset();
  unlink(tokens.c_str());
#ifdef EPMDX_LSAN
  // Everything the App allocated is gone: LeakSanitizer finds nothing unreachable.
  EXPECT_EQ(__lsan_do_recoverable_leak_check(), 0);
#endif
}

}  // namespace
}  // namespace epmdx::testing
