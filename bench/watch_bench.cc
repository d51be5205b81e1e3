// Watch latency and its cost, against a real epmdx process:
//  - registration (ALIVE2 sent) to REGISTERED event received, p50/p99, at 1 and 1,000 gRPC
//    watchers and at 1 and 100 SSE watchers;
//  - PORT_PLEASE2 lookups per second with no watcher, then with 1,000 gRPC watchers attached.
//
//   watch_bench [--epmdx=PATH] [--registrations=N] [--seconds=N]

#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>

#include "bench/bench_util.h"
#include "epmdx/v1/registry.grpc.pb.h"

namespace {

using namespace epmdx::bench;
namespace v1 = epmdx::v1;

constexpr const char* kToken = "bench-token";

// Registration times by name, and the receive samples the watchers report.
class Recorder {
 public:
  void sent(const std::string& name, Clock::time_point t) {
    std::lock_guard<std::mutex> lock(mu_);
    sent_[name] = t;
  }
  void received(const std::string& name) {
    const auto now = Clock::now();
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sent_.find(name);
    if (it == sent_.end()) {
      return;
    }
    samples_.push_back(std::chrono::duration<double, std::micro>(now - it->second).count());
    ++got_[name];
    cv_.notify_all();
  }
  bool waitAll(const std::string& name, int watchers) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return got_[name] >= watchers; });
  }
  std::pair<double, double> p50p99() {
    std::lock_guard<std::mutex> lock(mu_);
    std::sort(samples_.begin(), samples_.end());
    if (samples_.empty()) {
      return {0, 0};
    }
    return {samples_[samples_.size() / 2], samples_[samples_.size() * 99 / 100]};
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(mu_);
    return samples_.size();
  }
  void clearSamples() {
    std::lock_guard<std::mutex> lock(mu_);
    samples_.clear();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Clock::time_point> sent_;
  std::map<std::string, int> got_;
  std::vector<double> samples_;
};

class GrpcWatcher final : public grpc::ClientReadReactor<v1::WatchNodesResponse> {
 public:
  GrpcWatcher(v1::Registry::Stub& stub, Recorder& rec, std::atomic<int>& ready)
      : rec_(rec), ready_(ready) {
    ctx_.AddMetadata("authorization", std::string("Bearer ") + kToken);
    req_.set_progress_interval_ms(60000);
    req_.set_send_initial_state(true);
    stub.async()->WatchNodes(&ctx_, &req_, this);
    StartRead(&msg_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) {
      return;
    }
    if (msg_.initial_state_complete()) {
      ++ready_;
    }
    for (const auto& e : msg_.events()) {
      if (e.type() == v1::NodeEvent::REGISTERED) {
        rec_.received(e.node().name());
      }
    }
    StartRead(&msg_);
  }
  void OnDone(const grpc::Status&) override {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
    cv_.notify_all();
  }
  void cancel() { ctx_.TryCancel(); }
  void await() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return done_; });
  }

 private:
  Recorder& rec_;
  std::atomic<int>& ready_;
  grpc::ClientContext ctx_;
  v1::WatchNodesRequest req_;
  v1::WatchNodesResponse msg_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
};

using Watchers = std::vector<std::unique_ptr<GrpcWatcher>>;

/// Opens `n` watch streams and returns once each has its initial state.
Watchers openWatchers(v1::Registry::Stub& stub, Recorder& rec, int n) {
  // Static: the watchers keep a reference; sets are opened and closed one after another.
  static std::atomic<int> ready;
  ready = 0;
  Watchers ws;
  for (int i = 0; i < n; ++i) {
    ws.push_back(std::make_unique<GrpcWatcher>(stub, rec, ready));
  }
  while (ready < n) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // Polling, bounded by gRPC.
  }
  return ws;
}

void closeWatchers(Watchers& ws) {
  for (auto& w : ws) {
    w->cancel();
  }
  for (auto& w : ws) {
    w->await();
  }
}

struct Daemon {
  uint16_t epmd = freePort();
  uint16_t grpc = freePort();
  uint16_t http = freePort();
  std::string tokens = "/tmp/epmdx-watch-bench-tokens-" + std::to_string(getpid());
  std::unique_ptr<Server> server;
  explicit Daemon(const std::string& bin) {
    std::ofstream(tokens) << kToken << " read evict\n";
    server = std::make_unique<Server>(std::vector<std::string>{
        bin, "-port", std::to_string(epmd), "--grpc-listen=127.0.0.1:" + std::to_string(grpc),
        "--http-listen=127.0.0.1:" + std::to_string(http), "--tokens-file=" + tokens,
        "--max-watchers=1100"});
    waitForPort(epmd);
    waitForPort(grpc);
    waitForPort(http);
  }
  ~Daemon() { unlink(tokens.c_str()); }
};

/// Registers `n` fresh names one after the other, each only after every watcher saw the
/// previous one, and returns the open connections.
std::vector<int> registerPaced(Daemon& d, Recorder& rec, const std::string& prefix, int n,
                               int watchers) {
  // The first registrations warm up connections and code paths: not counted.
  constexpr int kWarmup = 20;
  std::vector<int> fds;
  for (int i = -kWarmup; i < n; ++i) {
    if (i == 0) {
      rec.clearSamples();
    }
    const std::string name = prefix + std::to_string(i);
    const int fd = connectLoopback(d.epmd, static_cast<unsigned>(i + kWarmup));
    rec.sent(name, Clock::now());
    writeAll(fd, alive2(name, 30000));
    char r[6];
    (void)!read(fd, r, sizeof r);
    fds.push_back(fd);
    if (!rec.waitAll(name, watchers)) {
      std::fprintf(stderr, "timeout waiting for %s\n", name.c_str());
    }
  }
  return fds;
}

// One watcher read by a plain blocking reader on its own thread: no client-side callback
// executor between the socket and the clock.
void grpcLatencySync(Daemon& d, int n) {
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(d.grpc),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::Registry::NewStub(channel);
  Recorder rec;
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", std::string("Bearer ") + kToken);
  v1::WatchNodesRequest req;
  req.set_send_initial_state(true);
  req.set_progress_interval_ms(60000);
  auto reader = stub->WatchNodes(&ctx, req);
  std::atomic<bool> ready{false};
  std::thread t([&] {
    v1::WatchNodesResponse msg;
    while (reader->Read(&msg)) {
      if (msg.initial_state_complete()) {
        ready = true;
      }
      for (const auto& e : msg.events()) {
        if (e.type() == v1::NodeEvent::REGISTERED) {
          rec.received(e.node().name());
        }
      }
    }
  });
  while (!ready) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  auto fds = registerPaced(d, rec, "sync-", n, 1);
  const auto [p50, p99] = rec.p50p99();
  std::printf(
      "gRPC      1 watcher (blocking reader): register -> event p50 %7.0f us  p99 %7.0f us\n", p50,
      p99);
  ctx.TryCancel();
  t.join();
  for (int fd : fds) {
    close(fd);
  }
}

void grpcLatency(Daemon& d, int watchers, int n) {
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(d.grpc),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::Registry::NewStub(channel);
  Recorder rec;
  auto ws = openWatchers(*stub, rec, watchers);
  auto fds = registerPaced(d, rec, "g" + std::to_string(watchers) + "-", n, watchers);
  const auto [p50, p99] = rec.p50p99();
  std::printf("gRPC  %5d watchers: register -> event p50 %7.0f us  p99 %7.0f us  (%zu samples)\n",
              watchers, p50, p99, rec.count());
  closeWatchers(ws);
  for (int fd : fds) {
    close(fd);
  }
}

void sseLatency(Daemon& d, int watchers, int n) {
  Recorder rec;
  std::atomic<int> ready{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < watchers; ++i) {
    threads.emplace_back([&] {
      httplib::Client cli("127.0.0.1", d.http);
      cli.set_read_timeout(std::chrono::seconds(60));
      std::string buf;
      std::string event;
      cli.Get("/v1/watch?initial=true", httplib::Headers{}, [&](const char* data, size_t len) {
        buf.append(data, len);
        size_t nl;
        while ((nl = buf.find('\n')) != std::string::npos) {
          const std::string line = buf.substr(0, nl);
          buf.erase(0, nl + 1);
          if (line.rfind("event: ", 0) == 0) {
            event = line.substr(7);
            if (event == "initial") {
              ++ready;
            }
          } else if (line.rfind("data: ", 0) == 0 && event == "change") {
            // The name, without a JSON parser: "name":"...".
            const auto k = line.find("\"name\":\"");
            const auto e = line.find('"', k + 8);
            if (k != std::string::npos && line.find("\"REGISTERED\"") != std::string::npos) {
              rec.received(line.substr(k + 8, e - k - 8));
            }
          }
        }
        return !stop.load();
      });
    });
  }
  while (ready < watchers) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  auto fds = registerPaced(d, rec, "s" + std::to_string(watchers) + "-", n, watchers);
  const auto [p50, p99] = rec.p50p99();
  std::printf("SSE   %5d watchers: register -> event p50 %7.0f us  p99 %7.0f us  (%zu samples)\n",
              watchers, p50, p99, rec.count());
  stop = true;
  for (int fd : fds) {
    close(fd);  // The unregistrations wake every stream, which then sees stop.
  }
  for (auto& t : threads) {
    t.join();
  }
}

void lookupsWithWatchers(Daemon& d, double seconds) {
  std::vector<int> held = registerNames(d.epmd, 10);
  const double without = measure(d.epmd, 4, 10, seconds).rate;
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(d.grpc),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::Registry::NewStub(channel);
  Recorder rec;
  auto ws = openWatchers(*stub, rec, 1000);
  const double with = measure(d.epmd, 4, 10, seconds).rate;
  std::printf(
      "lookups/s, 4 clients, 10 held: %.0f without watchers, %.0f with 1000 gRPC "
      "watchers (%.1f%%)\n",
      without, with, 100.0 * (with - without) / without);
  closeWatchers(ws);
  for (int fd : held) {
    close(fd);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string bin = "build/epmdx";
  int n = 200;
  double seconds = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const std::string v = a.substr(a.find('=') + 1);
    if (a.rfind("--epmdx=", 0) == 0) {
      bin = v;
    } else if (a.rfind("--registrations=", 0) == 0) {
      n = std::atoi(v.c_str());
    } else if (a.rfind("--seconds=", 0) == 0) {
      seconds = std::atof(v.c_str());
    } else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  prepareProcess();
  Daemon d(bin);
  std::printf(
      "watch latency: %d registrations (after 20 not counted), each after every watcher "
      "saw the previous\n",
      n);
  grpcLatency(d, 1, n);
  grpcLatencySync(d, n);
  grpcLatency(d, 1000, n / 4);
  sseLatency(d, 1, n);
  sseLatency(d, 100, n / 4);
  lookupsWithWatchers(d, seconds);
  return 0;
}
