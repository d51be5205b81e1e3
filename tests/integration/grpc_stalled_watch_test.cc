// gRPC watch streams whose client never reads again, against the real
// epmdx binary: 40 streams through a TCP proxy that stops forwarding the daemon's bytes (a
// client stalled at the TCP level), then registrations churn through a small history. A
// stream cut for falling behind cannot deliver its OUT_OF_RANGE behind a write nobody
// takes; it must still end within a bounded time, its watcher slot freed (a new watch opens
// under the same --max-watchers) and counted, while the proxy is still stalled.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "epmdx/v1/registry.grpc.pb.h"
#include "tests/support/epmdx_daemon.h"
#include "tests/support/grpc_watch_stream.h"
#include "tests/support/net.h"
#include "tests/support/raw_http.h"
#include "tests/support/tcp_proxy.h"

namespace epmdx::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kStalled = 40;
constexpr int kPerChannel = 10;
constexpr int kHistory = 500;
// The daemon cancels a stalled stream 1 s after cutting it (WatchReactor::kCancelGrace);
// the bound leaves room for a loaded machine.
constexpr auto kBound = 5s;

const std::string kBearer = std::string("Bearer ") + EpmdxDaemon::kReaderToken;

bool waitFor(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!cond()) {
    if (Clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(10ms);  // Polling a condition with a deadline.
  }
  return true;
}

/// A watch stream that reads only when told to (never, for the stalled ones).
class Watch {
 public:
  Watch(v1::Registry::Stub& stub, bool read)
      : stream_(stub, kBearer, request(), read, [this](const v1::WatchNodesResponse& m) {
          if (m.initial_state_complete()) {
            ready_ = true;
          }
        }) {}
  void resume() { stream_.resume(); }
  void cancel() { stream_.cancel(); }
  bool waitDone(std::chrono::milliseconds timeout) { return stream_.waitDone(timeout); }
  grpc::Status status() { return stream_.status(); }
  bool ready() const { return ready_; }

 private:
  static v1::WatchNodesRequest request() {
    v1::WatchNodesRequest r;
    r.set_progress_interval_ms(60000);
    r.set_send_initial_state(true);
    return r;
  }

  std::atomic<bool> ready_{false};  // Before stream_: its reads may start at once.
  GrpcWatchStream stream_;
};

/// Registers and unregisters `cycles` names from `first` on: two events each.
void churn(uint16_t epmd, int first, int cycles) {
  for (int i = first; i < first + cycles; ++i) {
    const int fd = connectTo("127.0.0.1", epmd);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(sendAll(fd, frame(alive2Body("churn" + std::to_string(i), 9500))));
    ASSERT_EQ(readN(fd, 6, 5000ms).size(), 6u);
    close(fd);
  }
}

TEST(GrpcStalledWatch, AStreamCutForFallingBehindEndsAndFreesItsSlotWhileItsClientNeverReads) {
  raiseFileLimit();
  EpmdxDaemon d(
      {"--history-size=" + std::to_string(kHistory), "--max-watchers=" + std::to_string(kStalled)});
  ASSERT_TRUE(d.ready()) << d.process().stderrText();
  const uint16_t http = d.httpPort();

  TcpProxy proxy(d.grpcPort());
  std::vector<std::unique_ptr<v1::Registry::Stub>> stubs;
  std::vector<std::unique_ptr<Watch>> stalled;
  for (int ch = 0; ch < kStalled / kPerChannel; ++ch) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // One TCP connection per channel.
    stubs.push_back(v1::Registry::NewStub(grpc::CreateCustomChannel(
        "127.0.0.1:" + std::to_string(proxy.port()), grpc::InsecureChannelCredentials(), args)));
    for (int i = 0; i < kPerChannel; ++i) {
      stalled.push_back(std::make_unique<Watch>(*stubs.back(), false));
    }
  }
  ASSERT_TRUE(waitFor(
      [&] { return metricValue(http, "epmdx_watchers{api=\"grpc\"}") == std::to_string(kStalled); },
      10s))
      << metricValue(http, "epmdx_watchers{api=\"grpc\"}");
  proxy.setPaused(true);  // From now on the daemon's bytes pile up: nobody reads them.

  // Churn until every stalled stream fell behind and was cut (the kernel's and HTTP/2's
  // buffers take a few MB first), in rounds of twice the history. Bounded well under the
  // daemon's 30 s keepalive, which would end the stalled connections by itself.
  int cycles = 0;
  const auto churn_deadline = Clock::now() + 10s;
  while (metricValue(http, "epmdx_watch_streams_cut_total{api=\"grpc\"}") !=
             std::to_string(kStalled) &&
         Clock::now() < churn_deadline) {
    churn(d.epmdPort(), cycles, kHistory);
    ASSERT_FALSE(HasFatalFailure()) << "a registration failed";
    cycles += kHistory;
  }
  std::printf("%d register/unregister cycles until all %d stalled streams were cut\n", cycles,
              kStalled);
  const auto churned = Clock::now();
  const bool freed =
      waitFor([&] { return metricValue(http, "epmdx_watchers{api=\"grpc\"}") == "0"; }, kBound);
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - churned).count();
  std::printf("stalled gRPC streams: %s watcher slots held %.0f ms after the churn\n",
              metricValue(http, "epmdx_watchers{api=\"grpc\"}").c_str(), ms);
  EXPECT_TRUE(freed) << metricValue(http, "epmdx_watchers{api=\"grpc\"}")
                     << " slots still held, the proxy still stalled";
  EXPECT_EQ(metricValue(http, "epmdx_watch_streams_cut_total{api=\"grpc\"}"),
            std::to_string(kStalled));

  // The freed slots are usable: under --max-watchers=40 a reading client gets its state.
  auto direct = v1::Registry::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(d.grpcPort()), grpc::InsecureChannelCredentials()));
  auto fresh = std::make_unique<Watch>(*direct, true);
  EXPECT_TRUE(waitFor([&] { return fresh->ready(); }, 5s)) << fresh->status().error_message();

  // Once the proxy forwards again and a stalled client reads, it learns that its stream
  // ended (not OK).
  proxy.setPaused(false);
  for (auto& w : stalled) {
    w->resume();
  }
  int ended = 0;
  for (auto& w : stalled) {
    if (w->waitDone(10s)) {
      ++ended;
      EXPECT_NE(w->status().error_code(), grpc::StatusCode::OK);
    }
  }
  EXPECT_EQ(ended, kStalled) << "stalled streams never ended for their client";
  for (auto& w : stalled) {
    w->cancel();
    if (!w->waitDone(5s)) {
      (void)w.release();  // A reactor must outlive its call.
    }
  }
  fresh->cancel();
  if (!fresh->waitDone(5s)) {
    (void)fresh.release();  // A reactor must outlive its call.
  }
}

}  // namespace
}  // namespace epmdx::testing
