// Threads of the real epmdx binary: an idle daemon runs a handful,
// and a thousand SSE watchers plus a thousand idle keep-alive REST clients are served at
// once without a thread each; the watcher over --max-watchers gets a JSON 503.

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <dirent.h>

#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>

#include "epmdx/v1/registry.grpc.pb.h"
#include "tests/support/epmdx_daemon.h"
#include "tests/support/net.h"
#include "tests/support/raw_http.h"

namespace epmdx::testing {
namespace {

using namespace std::chrono_literals;

// 16 before the HTTP worker that builds the big answers (server/http/worker_pool.h): one
// thread more, started with the daemon.
constexpr int kMaxThreads = 17;

/// "4 epmdx, 2 event_engine, ...": the daemon's threads by name.
std::string threadNames(const EpmdxDaemon& d) {
  std::map<std::string, int> names;
  const std::string base = "/proc/" + std::to_string(d.pid()) + "/task";
  DIR* dir = opendir(base.c_str());
  if (dir == nullptr) {
    return {};
  }
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') {
      std::ifstream in(base + "/" + e->d_name + "/comm");
      std::string name;
      std::getline(in, name);
      ++names[name];
    }
  }
  closedir(dir);
  std::string out;
  for (const auto& [name, n] : names) {
    out += (out.empty() ? "" : ", ") + std::to_string(n) + " " + name;
  }
  return out;
}

/// The daemon's thread count once it stops changing (gRPC starts some lazily), within 2 s.
int settledThreads(const EpmdxDaemon& d) {
  int last = d.threads();
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  int stable = 0;
  while (stable < 5 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);  // Sampling a counter, not synchronising.
    const int now = d.threads();
    stable = now == last ? stable + 1 : 0;
    last = now;
  }
  return last;
}

TEST(HttpThreads, IdleDaemonRunsAtMost17Threads) {
  // Defaults but the ports (and where the generated token goes).
  EpmdxDaemon d({}, /*tokens=*/false);
  ASSERT_TRUE(d.ready()) << d.process().stderrText();
  const int threads = settledThreads(d);
  RecordProperty("idle_threads", threads);
  RecordProperty("idle_rss_kib", std::to_string(d.rssKib()));
  EXPECT_LE(threads, kMaxThreads);
  EXPECT_GT(threads, 0);
}

TEST(HttpThreads, ThousandWatchersAndThousandKeepAliveClients) {
  raiseFileLimit();
  EpmdxDaemon d({"--max-watchers=1000"});
  ASSERT_TRUE(d.ready()) << d.process().stderrText();
  const uint16_t port = d.httpPort();
  const int idle = settledThreads(d);

  std::vector<std::unique_ptr<RawHttp>> watchers;
  for (int i = 0; i < 1000; ++i) {
    auto c = std::make_unique<RawHttp>(port);
    ASSERT_TRUE(c->connected()) << i;
    ASSERT_TRUE(c->send(httpRequest("GET", "/v1/watch", port)));
    ASSERT_TRUE(c->readUntil("retry: 1000\n\n", 5s)) << "watcher " << i << ": " << c->buffered();
    ASSERT_EQ(c->buffered().rfind("HTTP/1.1 200", 0), 0u) << c->buffered();
    watchers.push_back(std::move(c));
  }
  std::vector<std::unique_ptr<RawHttp>> clients;
  for (int i = 0; i < 1000; ++i) {
    auto c = std::make_unique<RawHttp>(port);
    ASSERT_TRUE(c->connected()) << i;
    ASSERT_TRUE(c->send(httpRequest("GET", "/livez", port)));
    auto res = c->read();
    ASSERT_TRUE(res) << "client " << i;
    ASSERT_EQ(res->status, 200);
    clients.push_back(std::move(c));
  }
  EXPECT_EQ(metricValue(port, "epmdx_watchers{api=\"sse\"}"), "1000");

  // The 1,001st watcher: the documented 503 with an ErrorBody.
  {
    RawHttp extra(port);
    ASSERT_TRUE(extra.send(httpRequest("GET", "/v1/watch", port)));
    auto res = extra.read();
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 503) << res->body;
    v1::ErrorBody e;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(res->body, &e).ok()) << res->body;
    EXPECT_EQ(e.code(), 503);
    EXPECT_EQ(e.status(), "RESOURCE_EXHAUSTED");
  }

  const int busy = d.threads();
  RecordProperty("threads_idle", idle);
  RecordProperty("threads_with_2000_clients", busy);
  RecordProperty("rss_kib_with_2000_clients", std::to_string(d.rssKib()));
  EXPECT_LE(busy, kMaxThreads);
  EXPECT_LE(busy, idle + 2) << "threads grew with the clients: " << idle << " -> " << busy;

  // Every one of them is still served: each watcher sees a registration, each keep-alive
  // client gets an answer on its open connection.
  const int holder = connectTo("127.0.0.1", d.epmdPort());
  ASSERT_TRUE(sendAll(holder, frame(alive2Body("thousand", 9400))));
  ASSERT_EQ(readN(holder, 6, 2000ms).substr(0, 2), std::string("v\0", 2));
  int saw = 0;
  for (auto& w : watchers) {
    saw += w->readUntil("\"thousand\"", 5s) ? 1 : 0;
  }
  EXPECT_EQ(saw, 1000);
  int answered = 0;
  for (auto& c : clients) {
    c->send(httpRequest("GET", "/v1/nodes/thousand", port));
    auto res = c->read();
    answered += res && res->status == 200 ? 1 : 0;
  }
  EXPECT_EQ(answered, 1000);
  EXPECT_LE(d.threads(), kMaxThreads);
  close(holder);
}

/// A gRPC watch stream that reads until cancelled, counting REGISTERED events.
class CountingWatch final : public grpc::ClientReadReactor<v1::WatchNodesResponse> {
 public:
  CountingWatch(v1::Registry::Stub& stub, std::atomic<int>& seen) : seen_(seen) {
    ctx_.AddMetadata("authorization", std::string("Bearer ") + EpmdxDaemon::kReaderToken);
    req_.set_progress_interval_ms(60000);
    stub.async()->WatchNodes(&ctx_, &req_, this);
    StartRead(&msg_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) {
      return;
    }
    for (const auto& e : msg_.events()) {
      seen_ += e.type() == v1::NodeEvent::REGISTERED ? 1 : 0;
    }
    StartRead(&msg_);
  }
  void OnDone(const grpc::Status&) override {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
    cv_.notify_all();
  }
  void cancel() { ctx_.TryCancel(); }
  bool waitDone(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return done_; });
  }

 private:
  std::atomic<int>& seen_;
  grpc::ClientContext ctx_;
  v1::WatchNodesRequest req_;
  v1::WatchNodesResponse msg_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
};

TEST(HttpThreads, IdleAgainAfterThousandGrpcWatchers) {
  // gRPC grows thread pools under load; an idle daemon must come back to a handful.
  raiseFileLimit();
  EpmdxDaemon d({"--max-watchers=1000"});
  ASSERT_TRUE(d.ready()) << d.process().stderrText();
  const int idle = settledThreads(d);
  auto stub = v1::Registry::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(d.grpcPort()),
                                                        grpc::InsecureChannelCredentials()));
  std::atomic<int> seen{0};
  std::vector<std::unique_ptr<CountingWatch>> watches;
  for (int i = 0; i < 1000; ++i) {
    watches.push_back(std::make_unique<CountingWatch>(*stub, seen));
  }
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (metricValue(d.httpPort(), "epmdx_watchers{api=\"grpc\"}") != "1000" &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);  // Polling a condition with a deadline.
  }
  ASSERT_EQ(metricValue(d.httpPort(), "epmdx_watchers{api=\"grpc\"}"), "1000");
  std::vector<int> holders;
  for (int i = 0; i < 20; ++i) {
    const int fd = connectTo("127.0.0.1", d.epmdPort());
    ASSERT_TRUE(sendAll(fd, frame(alive2Body("grpcload" + std::to_string(i), 9600))));
    ASSERT_EQ(readN(fd, 6, 2000ms).substr(0, 2), std::string("v\0", 2));
    holders.push_back(fd);
  }
  while (seen < 20000 && std::chrono::steady_clock::now() < deadline + 10s) {
    std::this_thread::sleep_for(20ms);  // Polling a condition with a deadline.
  }
  EXPECT_EQ(seen.load(), 20000);
  const int busy = d.threads();
  for (auto& w : watches) {
    w->cancel();
  }
  for (auto& w : watches) {
    EXPECT_TRUE(w->waitDone(10s));
  }
  watches.clear();
  for (int fd : holders) {
    close(fd);
  }
  while (metricValue(d.httpPort(), "epmdx_watchers{api=\"grpc\"}") != "0" &&
         std::chrono::steady_clock::now() < deadline + 20s) {
    std::this_thread::sleep_for(20ms);  // Polling a condition with a deadline.
  }
  const int after = settledThreads(d);
  RecordProperty("threads_idle", idle);
  RecordProperty("threads_with_1000_grpc", busy);
  RecordProperty("threads_idle_after", after);
  std::printf("threads: %d idle, %d with 1000 gRPC watchers, %d idle again\n", idle, busy, after);
  EXPECT_LE(after, kMaxThreads) << threadNames(d);
}

}  // namespace
}  // namespace epmdx::testing
