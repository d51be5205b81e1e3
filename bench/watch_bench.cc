// Watch latency and its cost, against a real epmdx process:
//  - the daemon's threads and RSS idle, with 1,000 SSE watchers and with 1,000 gRPC watchers;
//  - registration (ALIVE2 sent) to REGISTERED event received, p50/p99, at 1 and 1,000 gRPC
//    watchers and at 1 and 1,000 SSE watchers (one epoll reader for all SSE streams), and the
//    daemon's CPU time per event per watcher (/proc/PID/stat over the paced run);
//  - PORT_PLEASE2 lookups per second with no watcher, then with 1,000 gRPC watchers attached;
//  - lookups per second during a registration churn, without watchers and with 500 stalled
//    SSE clients (a tiny receive window, never read) plus 200 gRPC streams stalled at the TCP
//    level (their client process is stopped with SIGSTOP).
//
//   watch_bench [--epmdx=PATH] [--registrations=N] [--seconds=N] [--rounds=N]
//               [--only=grpc|sse|lookups|stalled]

#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <sys/epoll.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string_view>

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
  uint16_t epmd = wire::freePort();
  uint16_t grpc = wire::freePort();
  uint16_t http = wire::freePort();
  std::string tokens = "/tmp/epmdx-watch-bench-tokens-" + std::to_string(getpid());
  std::unique_ptr<Server> server;
  explicit Daemon(const std::string& bin, std::vector<std::string> extra = {}) {
    std::ofstream(tokens) << kToken << " read evict\n";
    std::vector<std::string> argv{bin,
                                  "-port",
                                  std::to_string(epmd),
                                  "--grpc-listen=127.0.0.1:" + std::to_string(grpc),
                                  "--http-listen=127.0.0.1:" + std::to_string(http),
                                  "--tokens-file=" + tokens,
                                  "--max-watchers=1100"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    server = std::make_unique<Server>(argv);
    wire::waitForPort(epmd, std::chrono::seconds(10));
    wire::waitForPort(grpc, std::chrono::seconds(10));
    wire::waitForPort(http, std::chrono::seconds(10));
  }
  ~Daemon() { unlink(tokens.c_str()); }
  pid_t pid() const { return server->pid(); }
  /// "threads 13, RSS 18.2 MB"
  std::string stats() const {
    char buf[96];
    std::snprintf(buf, sizeof buf, "threads %3d, RSS %6.1f MB", threadCount(pid()),
                  static_cast<double>(rssKib(pid())) / 1024.0);
    return buf;
  }
  /// The value of a /metrics series, e.g. epmdx_watchers{api="sse"}; -1 if absent.
  long metric(const std::string& series) const {
    httplib::Client cli("127.0.0.1", http);
    auto res = cli.Get("/metrics");
    if (!res) {
      return -1;
    }
    const auto at = res->body.find("\n" + series + " ");
    return at == std::string::npos ? -1 : std::atol(res->body.c_str() + at + series.size() + 2);
  }
};

/// The daemon's CPU time per event per watcher over a run, in microseconds.
double cpuPerEventPerWatcher(double cpu_seconds, int events, int watchers) {
  return cpu_seconds * 1e6 / (static_cast<double>(events) * watchers);
}

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
    const int fd = wire::connectLoopbackFrom(d.epmd, static_cast<unsigned>(i + kWarmup));
    rec.sent(name, Clock::now());
    wire::sendAll(fd, wire::alive2Request(name, 30000));
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
  const std::string stats = d.stats();
  const double cpu0 = cpuSeconds(d.pid());
  const double client0 = cpuSeconds(getpid());
  const auto threads0 = threadCpu(d.pid());
  auto fds = registerPaced(d, rec, "g" + std::to_string(watchers) + "-", n, watchers);
  const double cpu = cpuSeconds(d.pid()) - cpu0;
  const double client = cpuSeconds(getpid()) - client0;
  const std::string breakdown = cpuBreakdown(threads0, threadCpu(d.pid()));
  const auto [p50, p99] = rec.p50p99();
  std::printf(
      "gRPC  %5d watchers: register -> event p50 %7.0f us  p99 %7.0f us  (%zu samples)  "
      "daemon CPU %.2f us/event/watcher\n",
      watchers, p50, p99, rec.count(), cpuPerEventPerWatcher(cpu, n + 20, watchers));
  if (watchers > 1) {
    std::printf(
        "daemon with %d gRPC watchers: %s; CPU by thread: %s; client CPU %.2f "
        "us/event/watcher\n",
        watchers, stats.c_str(), breakdown.c_str(),
        cpuPerEventPerWatcher(client, n + 20, watchers));
  }
  closeWatchers(ws);
  for (int fd : fds) {
    close(fd);
  }
}

/// SSE watchers read by one epoll thread (a thread per stream would measure the client).
class SseReaders {
 public:
  SseReaders(uint16_t port, int n, Recorder& rec) : rec_(rec), ep_(epoll_create1(EPOLL_CLOEXEC)) {
    const std::string req =
        "GET /v1/watch?initial=true HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
        "\r\n\r\n";
    for (int i = 0; i < n; ++i) {
      const int fd = wire::connectLoopbackFrom(port, static_cast<unsigned>(i));
      if (fd < 0 || !wire::sendAll(fd, req)) {
        std::fprintf(stderr, "SSE watcher %d: cannot connect\n", i);
        continue;
      }
      fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u32 = static_cast<uint32_t>(conns_.size());
      epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
      conns_.push_back({fd, {}});
    }
    thread_ = std::thread([this] { run(); });
  }
  ~SseReaders() {
    stop_ = true;
    thread_.join();
    for (auto& c : conns_) {
      close(c.fd);
    }
    close(ep_);
  }
  int ready() const { return ready_; }

 private:
  struct Conn {
    int fd;
    std::string buf;
  };
  void run() {
    epoll_event events[256];
    char chunk[65536];
    while (!stop_) {
      const int n = epoll_wait(ep_, events, 256, 50);
      for (int i = 0; i < n; ++i) {
        Conn& c = conns_[events[i].data.u32];
        ssize_t got;
        while ((got = read(c.fd, chunk, sizeof chunk)) > 0) {
          c.buf.append(chunk, static_cast<size_t>(got));
        }
        size_t start = 0;
        size_t end;
        while ((end = c.buf.find("\n\n", start)) != std::string::npos) {
          const std::string_view frame(c.buf.data() + start, end - start);
          start = end + 2;
          if (frame.find("event: initial") != std::string_view::npos) {
            ++ready_;
          } else if (frame.find("event: change") != std::string_view::npos &&
                     frame.find("\"REGISTERED\"") != std::string_view::npos) {
            const auto k = frame.find("\"name\":\"");
            const auto e = frame.find('"', k + 8);
            if (k != std::string_view::npos && e != std::string_view::npos) {
              rec_.received(std::string(frame.substr(k + 8, e - k - 8)));
            }
          }
        }
        c.buf.erase(0, start);
      }
    }
  }

  Recorder& rec_;
  int ep_;
  std::vector<Conn> conns_;
  std::atomic<int> ready_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

void sseLatency(Daemon& d, int watchers, int n) {
  Recorder rec;
  const auto opened = Clock::now();
  auto readers = std::make_unique<SseReaders>(d.http, watchers, rec);
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (readers->ready() < watchers && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // Polling, bounded.
  }
  // All at once, as dashboards reconnect after a restart: each must get its initial state.
  std::printf("SSE   %5d watchers opened at once: %d got their initial state in %.2f s\n", watchers,
              readers->ready(), std::chrono::duration<double>(Clock::now() - opened).count());
  if (readers->ready() < watchers) {
    std::printf("SSE   %d watchers without an initial state: skipping their latency run\n",
                watchers - readers->ready());
    return;
  }
  const std::string stats = d.stats();
  const double cpu0 = cpuSeconds(d.pid());
  const double client0 = cpuSeconds(getpid());
  const auto threads0 = threadCpu(d.pid());
  auto fds = registerPaced(d, rec, "s" + std::to_string(watchers) + "-", n, watchers);
  const double cpu = cpuSeconds(d.pid()) - cpu0;
  const double client = cpuSeconds(getpid()) - client0;
  const std::string breakdown = cpuBreakdown(threads0, threadCpu(d.pid()));
  const auto [p50, p99] = rec.p50p99();
  std::printf(
      "SSE   %5d watchers: register -> event p50 %7.0f us  p99 %7.0f us  (%zu samples)  "
      "daemon CPU %.2f us/event/watcher\n",
      watchers, p50, p99, rec.count(), cpuPerEventPerWatcher(cpu, n + 20, watchers));
  if (watchers > 1) {
    std::printf(
        "daemon with %d SSE watchers: %s; CPU by thread: %s; client CPU %.2f "
        "us/event/watcher\n",
        watchers, stats.c_str(), breakdown.c_str(),
        cpuPerEventPerWatcher(client, n + 20, watchers));
  }
  readers.reset();
  for (int fd : fds) {
    close(fd);
  }
}

void lookupsWithWatchers(Daemon& d, double seconds, int rounds) {
  std::vector<int> held = registerNames(d.epmd, 10);
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(d.grpc),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::Registry::NewStub(channel);
  std::vector<double> ratios;
  double without = 0;
  double with = 0;
  for (int r = 0; r < rounds; ++r) {
    without = measure(d.epmd, 4, 10, seconds).rate;
    Recorder rec;
    auto ws = openWatchers(*stub, rec, 1000);
    with = measure(d.epmd, 4, 10, seconds).rate;
    closeWatchers(ws);
    ratios.push_back(with / without);
    std::printf(
        "round %d: lookups/s, 4 clients, 10 held: %.0f without watchers, %.0f with 1000 "
        "gRPC watchers (%.0f%%)\n",
        r + 1, without, with, 100.0 * ratios.back());
  }
  std::sort(ratios.begin(), ratios.end());
  std::printf(
      "lookups/s with 1000 idle gRPC watchers: %.0f%% of the rate without (median of %d "
      "rounds)\n",
      100.0 * ratios[ratios.size() / 2], rounds);
  for (int fd : held) {
    close(fd);
  }
}

// ---- Stalled watchers ------------------------------------------------------------------

/// Child mode: opens `n` gRPC watch streams (20 per connection) and never reads them; tells
/// the parent on stdout, then waits to be stopped (SIGSTOP) and killed.
int stalledGrpcChild(uint16_t port, int n) {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<v1::Registry::Stub>> stubs;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::WatchNodesResponse>>> readers;
  for (int i = 0; i < n; ++i) {
    if (i % 20 == 0) {
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // A TCP connection per channel.
      channels.push_back(grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port),
                                                   grpc::InsecureChannelCredentials(), args));
      stubs.push_back(v1::Registry::NewStub(channels.back()));
    }
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    contexts.back()->AddMetadata("authorization", std::string("Bearer ") + kToken);
    v1::WatchNodesRequest req;
    req.set_progress_interval_ms(60000);
    readers.push_back(stubs.back()->WatchNodes(contexts.back().get(), req));
  }
  std::printf("ready\n");
  std::fflush(stdout);
  for (;;) {
    pause();
  }
}

/// Registers and unregisters fresh names as fast as one client can, until stopped.
class Churn {
 public:
  explicit Churn(uint16_t port) {
    thread_ = std::thread([this, port] {
      for (unsigned i = 0; !stop_; ++i) {
        const int fd = wire::connectLoopbackFrom(port, i);
        if (fd < 0) {
          continue;
        }
        wire::sendAll(fd, wire::alive2Request("churn" + std::to_string(i), 31000));
        char r[6];
        if (read(fd, r, sizeof r) == 6) {
          ++cycles_;
        }
        close(fd);
      }
    });
  }
  ~Churn() { stop(); }
  uint64_t stop() {
    stop_ = true;
    if (thread_.joinable()) {
      thread_.join();
    }
    return cycles_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> cycles_{0};
  std::thread thread_;
};

struct ChurnPoint {
  double lookups = 0;
  double registrations = 0;
};

ChurnPoint lookupsDuringChurn(Daemon& d, double seconds) {
  Churn churn(d.epmd);
  const auto t0 = Clock::now();
  const double lookups = measure(d.epmd, 4, 10, seconds).rate;
  const uint64_t cycles = churn.stop();
  return {lookups, cycles / std::chrono::duration<double>(Clock::now() - t0).count()};
}

/// 500 SSE clients with a tiny receive window that never read, and 200 gRPC streams in a
/// child process that is then stopped (a TCP-level stall). Killed and closed on destruction.
class StalledWatchers {
 public:
  StalledWatchers(Daemon& d, const std::string& self) {
    const std::string req =
        "GET /v1/watch HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(d.http) + "\r\n\r\n";
    for (int i = 0; i < 500; ++i) {
      const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      int small = 2048;
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(d.http);
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || !wire::sendAll(fd, req)) {
        close(fd);
        continue;
      }
      sse_.push_back(fd);
    }
    int out[2];
    if (pipe(out) != 0) {
      return;
    }
    const std::string arg = "--stalled-grpc-child=" + std::to_string(d.grpc) + ":200";
    std::vector<char*> argv{const_cast<char*>(self.c_str()), const_cast<char*>(arg.c_str()),
                            nullptr};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn(&child_, self.c_str(), &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    char buf[16] = {};
    (void)!read(out[0], buf, sizeof buf - 1);
    close(out[0]);
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    while ((d.metric("epmdx_watchers{api=\"grpc\"}") < 200 ||
            d.metric("epmdx_watchers{api=\"sse\"}") < static_cast<long>(sse_.size())) &&
           Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // Polling, bounded.
    }
    grpc_open = d.metric("epmdx_watchers{api=\"grpc\"}");
    sse_open = d.metric("epmdx_watchers{api=\"sse\"}");
    kill(child_, SIGSTOP);
  }
  ~StalledWatchers() {
    if (child_ > 0) {
      kill(child_, SIGKILL);
      waitpid(child_, nullptr, 0);
    }
    for (int fd : sse_) {
      close(fd);
    }
  }
  long grpc_open = 0;
  long sse_open = 0;

 private:
  std::vector<int> sse_;
  pid_t child_ = -1;
};

void lookupsWithStalledWatchers(const std::string& bin, const std::string& self, double seconds,
                                int rounds) {
  Daemon d(bin, {"--history-size=2000"});
  std::vector<int> held = registerNames(d.epmd, 10);
  std::vector<double> ratios;
  for (int r = 0; r < rounds; ++r) {
    const auto t0 = threadCpu(d.pid());
    const ChurnPoint without = lookupsDuringChurn(d, seconds);
    const auto t1 = threadCpu(d.pid());
    StalledWatchers stalled(d, self);
    const long rss0 = rssKib(d.pid());
    const auto t2 = threadCpu(d.pid());
    const ChurnPoint with = lookupsDuringChurn(d, seconds);
    const auto t3 = threadCpu(d.pid());
    const long rss1 = rssKib(d.pid());
    ratios.push_back(with.lookups / without.lookups);
    std::printf(
        "round %d: lookups/s during churn %.0f without watchers (%.0f registrations/s), %.0f "
        "with %ld stalled SSE + %ld stalled gRPC (%.0f registrations/s) = %.0f%%; RSS %.1f -> "
        "%.1f MB\n  daemon CPU without: %s\n  daemon CPU with:    %s\n",
        r + 1, without.lookups, without.registrations, with.lookups, stalled.sse_open,
        stalled.grpc_open, with.registrations, 100.0 * ratios.back(), rss0 / 1024.0, rss1 / 1024.0,
        cpuBreakdown(t0, t1).c_str(), cpuBreakdown(t2, t3).c_str());
  }
  std::sort(ratios.begin(), ratios.end());
  std::printf(
      "lookups/s during churn with 500 stalled SSE + 200 stalled gRPC watchers: %.0f%% of the "
      "rate without (median of %d rounds, --history-size=2000); daemon after: %s\n",
      100.0 * ratios[ratios.size() / 2], rounds, d.stats().c_str());
  for (int fd : held) {
    close(fd);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string bin = "build/epmdx";
  int n = 200;
  double seconds = 3;
  std::string stalled_child;
  int rounds = 3;    // Of the stalled-watcher comparison.
  std::string only;  // grpc, sse, lookups or stalled: run that part alone.
  char exe[4096] = {};
  const std::string self(exe,
                         std::max<ssize_t>(0, readlink("/proc/self/exe", exe, sizeof exe - 1)));
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const std::string v = a.substr(a.find('=') + 1);
    if (a.rfind("--epmdx=", 0) == 0) {
      bin = v;
    } else if (a.rfind("--registrations=", 0) == 0) {
      n = std::atoi(v.c_str());
    } else if (a.rfind("--seconds=", 0) == 0) {
      seconds = std::atof(v.c_str());
    } else if (a.rfind("--rounds=", 0) == 0) {
      rounds = std::atoi(v.c_str());
    } else if (a.rfind("--only=", 0) == 0) {
      only = v;
    } else if (a.rfind("--stalled-grpc-child=", 0) == 0) {
      stalled_child = v;
    } else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  prepareProcess();
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // Figures survive a run cut short by a timeout.
  if (!stalled_child.empty()) {
    const auto colon = stalled_child.find(':');
    return stalledGrpcChild(static_cast<uint16_t>(std::atoi(stalled_child.c_str())),
                            std::atoi(stalled_child.c_str() + colon + 1));
  }
  Daemon d(bin);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // Let lazy threads start.
  std::printf("daemon idle: %s\n", d.stats().c_str());
  std::printf(
      "watch latency: %d registrations (after 20 not counted), each after every watcher "
      "saw the previous\n",
      n);
  auto part = [&only](const char* name) { return only.empty() || only == name; };
  // SSE first: gRPC grows its own thread pools under load, which would be counted as the
  // SSE watchers' threads otherwise.
  if (part("sse")) {
    sseLatency(d, 1, n);
    sseLatency(d, 1000, n / 4);
  }
  if (part("grpc")) {
    grpcLatency(d, 1, n);
    grpcLatencySync(d, n);
    grpcLatency(d, 1000, n / 4);
  }
  if (part("lookups")) {
    lookupsWithWatchers(d, seconds, rounds);
  }
  if (part("stalled")) {
    lookupsWithStalledWatchers(bin, self, seconds, rounds);
  }
  return 0;
}
