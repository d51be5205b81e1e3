// The fleet relay (build/epmdx-fleet) against real epmdx daemons, all on ephemeral loopback
// ports (issue #21's figures, side by side in one run):
//  - latency: ALIVE2 on a source -> REGISTERED at a watcher of the relay, beside the same
//    watch on the source itself, both open at once (gRPC, then SSE);
//  - memory: the relay's RSS per relayed node (10 sources x 1,500), beside the sources' own;
//  - startup: from the relay's start to a complete view (every source LIVE with all of its
//    nodes in GET /v1/sources), with 100 sources x 100 nodes and 10 x 1,500;
//  - restart: the relay's CPU and events when one source of 100 nodes is SIGKILLed, started
//    again on its ports and its nodes registered again, in a fleet of 10 and one of 100;
//  - cpu: the relay's CPU per event relayed during a registration churn, beside the sources'.
//
//   fleet_bench [--epmdx=PATH] [--fleet=PATH] [--only=latency,memory,startup,restart,cpu]
//               [--samples=N] [--wide=SOURCESxNODES] [--many=SOURCESxNODES] [--rounds=N]
//               [--restarts=N] [--small-fleet=N] [--churn-seconds=S] [--relay-debug]
//
// --relay-debug runs the relays with -d (each reconnection's reason) and keeps the logs in
// /tmp/fleet-bench-PID: a slow round's why; its figures are not the benchmark's.
//
// Every figure is printed with its sample count. A timeout or an error is printed as an
// "ERROR:" line and the run exits 1: a benchmark that printed one has failed.

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>

#include "bench/bench_util.h"
#include "epmdx/v1/registry.grpc.pb.h"

namespace {

using namespace epmdx::bench;
namespace v1 = epmdx::v1;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kToken = "fleet-bench-token";

// ---- Errors, ports, files --------------------------------------------------------------

std::atomic<int> errors{0};

/// Prints an error; the run then exits non-zero.
void failure(const std::string& what) {
  ++errors;
  std::printf("ERROR: %s\n", what.c_str());
}

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

/// A free port no other part of this run holds: 300 daemons' ports drawn at random from
/// 22,000 would otherwise collide about twice a run. Never 4369-4373.
uint16_t uniquePort() {
  static std::mutex mu;
  static std::set<uint16_t> taken;
  std::lock_guard<std::mutex> lock(mu);
  for (int i = 0; i < 1000; ++i) {
    const uint16_t p = wire::freePort();
    if (p != 0 && (p < 4369 || p > 4373) && taken.insert(p).second) {
      return p;
    }
  }
  failure("no free port");
  return 0;
}

void writePrivate(const std::string& path, const std::string& text) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  const bool ok =
      fd >= 0 && write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  if (fd >= 0) {
    close(fd);
  }
  if (!ok) {
    failure("cannot write " + path);
  }
}

/// The run's files: the tokens (one token, read and evict, on the sources and the relay),
/// the relay's source token, and every child's log. Removed at the end unless the run failed
/// or `debug` (--relay-debug: the relays log with -d, and the logs are kept to read).
class Scratch {
 public:
  explicit Scratch(bool debug)
      : dir_("/tmp/fleet-bench-" + std::to_string(getpid())), debug_(debug) {
    std::filesystem::create_directories(dir_);
    writePrivate(tokens(), std::string(kToken) + " read evict name=bench\n");
    writePrivate(sourceToken(), std::string(kToken) + "\n");
  }
  ~Scratch() {
    if (errors == 0 && !debug_) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    } else {
      std::printf("logs kept in %s\n", dir_.c_str());
    }
  }
  std::string tokens() const { return dir_ + "/tokens"; }
  std::string sourceToken() const { return dir_ + "/source-token"; }
  std::string log(const std::string& name) const { return dir_ + "/" + name + ".log"; }
  bool debug() const { return debug_; }

 private:
  std::string dir_;
  bool debug_;
};

// ---- Child processes -------------------------------------------------------------------

/// A child with its output in a log file and none of this process's descriptors (the held
/// registrations must close when this process closes them). Killed and reaped at the end.
class Proc {
 public:
  Proc(std::vector<std::string> argv, const std::string& log) {
    std::vector<char*> a;
    for (auto& s : argv) {
      a.push_back(s.data());
    }
    a.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    if (posix_spawn(&pid_, a[0], &fa, nullptr, a.data(), environ) != 0) {
      pid_ = -1;
      failure("cannot start " + argv[0]);
    }
    posix_spawn_file_actions_destroy(&fa);
  }
  ~Proc() { kill9(); }
  Proc(const Proc&) = delete;
  Proc& operator=(const Proc&) = delete;

  void kill9() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  /// True once the child has exited (it is then reaped).
  bool exited() {
    if (pid_ <= 0) {
      return true;
    }
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return true;
    }
    return false;
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

// ---- Sources -----------------------------------------------------------------------------

/// One epmdx daemon, named by --instance-name, and the nodes registered on it over held
/// connections. Its ports survive kill9() and start(): the same pod coming back.
class Source {
 public:
  Source(std::string bin, std::string name, const Scratch& scratch, bool http)
      : bin_(std::move(bin)),
        name_(std::move(name)),
        log_(scratch.log(name_)),
        tokens_(scratch.tokens()),
        http_enabled_(http) {
    newPorts();
  }
  ~Source() { closeNodes(); }

  void newPorts() {
    epmd_ = uniquePort();
    grpc_ = uniquePort();
    http_ = http_enabled_ ? uniquePort() : 0;
  }
  void start() {
    const std::string http = http_ == 0 ? "off" : "127.0.0.1:" + std::to_string(http_);
    proc_ = std::make_unique<Proc>(
        std::vector<std::string>{bin_, "-port", std::to_string(epmd_),
                                 "--grpc-listen=127.0.0.1:" + std::to_string(grpc_),
                                 "--http-listen=" + http, "--tokens-file=" + tokens_,
                                 "--instance-name=" + name_},
        log_);
  }
  /// Both ports (three with HTTP) accept within `timeout`.
  bool ready(milliseconds timeout) {
    return wire::waitForPort(epmd_, timeout) && wire::waitForPort(grpc_, timeout) &&
           (http_ == 0 || wire::waitForPort(http_, timeout));
  }
  bool exited() { return !proc_ || proc_->exited(); }
  void kill9() {
    if (proc_) {
      proc_->kill9();
    }
    closeNodes();
  }

  /// Registers node0..node{count-1} at ports port_base + i (held open); false, with an
  /// error, when one fails.
  bool registerNodes(int count, int port_base = 20000) {
    for (int i = 0; i < count; ++i) {
      const int fd = wire::connectLoopbackFrom(epmd_, static_cast<unsigned>(i));
      if (fd < 0 || !wire::sendAll(fd, wire::alive2Request("node" + std::to_string(i),
                                                           static_cast<uint16_t>(port_base + i)))) {
        if (fd >= 0) {
          close(fd);
        }
        failure(name_ + ": cannot send ALIVE2 for node" + std::to_string(i));
        return false;
      }
      held_.push_back(fd);
      const auto reply = wire::parseAlive2Reply(wire::readN(fd, 6, seconds(10)));
      if (!reply || reply->result != 0) {
        failure(name_ + ": ALIVE2 for node" + std::to_string(i) + " refused or unanswered");
        return false;
      }
    }
    return true;
  }
  void closeNodes() {
    for (int fd : held_) {
      close(fd);
    }
    held_.clear();
  }

  const std::string& name() const { return name_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(grpc_); }
  uint16_t epmd() const { return epmd_; }
  uint16_t grpc() const { return grpc_; }
  uint16_t http() const { return http_; }
  pid_t pid() const { return proc_ ? proc_->pid() : -1; }

 private:
  std::string bin_;
  std::string name_;
  std::string log_;
  std::string tokens_;
  bool http_enabled_;
  uint16_t epmd_ = 0;
  uint16_t grpc_ = 0;
  uint16_t http_ = 0;
  std::unique_ptr<Proc> proc_;
  std::vector<int> held_;
};

using Sources = std::vector<std::unique_ptr<Source>>;

/// Starts `n` daemons at once and waits for every port. One that exits at start (a port
/// taken since it was picked: epmd's port then makes it exit quietly, as OTP's does) is
/// started again on new ports, up to three times.
Sources startSources(const std::string& bin, const Scratch& scratch, int n,
                     const std::string& prefix, bool http) {
  Sources out;
  char name[64];
  for (int i = 0; i < n; ++i) {
    std::snprintf(name, sizeof name, "%s%03d", prefix.c_str(), i);
    out.push_back(std::make_unique<Source>(bin, name, scratch, http));
    out.back()->start();
  }
  const auto deadline = Clock::now() + seconds(60);
  for (auto& s : out) {
    int retries = 0;
    while (!s->ready(milliseconds(200))) {
      if (Clock::now() > deadline) {
        failure(s->name() + ": its ports did not open in 60 s");
        return out;
      }
      if (s->exited()) {
        if (++retries > 3) {
          failure(s->name() + ": exited at start 4 times");
          return out;
        }
        s->newPorts();
        s->start();
      }
    }
    if (s->exited()) {
      failure(s->name() + ": exited after its ports opened (another process's ports?)");
    }
  }
  return out;
}

/// Registers `count` nodes on each source, several sources at once.
bool registerAll(const Sources& sources, size_t first, size_t end, int count) {
  std::atomic<size_t> next{first};
  std::atomic<bool> ok{true};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (size_t i = next++; i < end && ok; i = next++) {
        ok = sources[i]->registerNodes(count) && ok;
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  return ok;
}

/// Context switches (voluntary and not) of every live thread of a process.
long contextSwitches(pid_t pid) {
  const std::string base = "/proc/" + std::to_string(pid) + "/task";
  long total = 0;
  DIR* dir = opendir(base.c_str());
  if (dir == nullptr) {
    return 0;
  }
  while (dirent* e = readdir(dir)) {
    std::ifstream in(base + "/" + e->d_name + "/status");
    std::string line;
    while (e->d_name[0] != '.' && std::getline(in, line)) {
      if (line.find("ctxt_switches:") != std::string::npos) {
        total += std::atol(line.c_str() + line.find(':') + 1);
      }
    }
  }
  closedir(dir);
  return total;
}

double sumCpu(const Sources& sources, size_t n) {
  double total = 0;
  for (size_t i = 0; i < n; ++i) {
    total += cpuSeconds(sources[i]->pid());
  }
  return total;
}

// ---- The relay ---------------------------------------------------------------------------

/// build/epmdx-fleet following the given sources' gRPC addresses, on ports of its own.
class Relay {
 public:
  Relay(const std::string& bin, const Scratch& scratch, const Sources& sources, size_t n)
      : grpc_(uniquePort()), http_(uniquePort()) {
    static int counter = 0;
    argv_ = {bin, "--grpc-listen=127.0.0.1:" + std::to_string(grpc_),
             "--http-listen=127.0.0.1:" + std::to_string(http_),
             "--tokens-file=" + scratch.tokens(), "--source-token-file=" + scratch.sourceToken()};
    for (size_t i = 0; i < n; ++i) {
      argv_.push_back("--source=" + sources[i]->address());
    }
    if (scratch.debug()) {
      argv_.push_back("-d");
    }
    log_ = scratch.log("relay-" + std::to_string(++counter));
  }
  void start() { proc_ = std::make_unique<Proc>(argv_, log_); }
  bool ready(milliseconds timeout) {
    return wire::waitForPort(grpc_, timeout) && wire::waitForPort(http_, timeout);
  }
  pid_t pid() const { return proc_ ? proc_->pid() : -1; }
  uint16_t grpc() const { return grpc_; }
  uint16_t http() const { return http_; }

  /// GET /v1/sources, parsed; nullopt while the relay does not answer.
  std::optional<v1::ListSourcesResponse> sources() {
    if (!http_client_) {
      http_client_ = std::make_unique<httplib::Client>("127.0.0.1", http_);
      http_client_->set_keep_alive(true);
      http_client_->set_read_timeout(5, 0);
    }
    auto res = http_client_->Get("/v1/sources");
    if (!res || res->status != 200) {
      return std::nullopt;
    }
    v1::ListSourcesResponse out;
    google::protobuf::util::JsonParseOptions o;
    o.ignore_unknown_fields = true;
    if (!google::protobuf::util::JsonStringToMessage(res->body, &out, o).ok()) {
      return std::nullopt;
    }
    return out;
  }

 private:
  uint16_t grpc_;
  uint16_t http_;
  std::vector<std::string> argv_;
  std::string log_;
  std::unique_ptr<Proc> proc_;
  std::unique_ptr<httplib::Client> http_client_;
};

/// Whether `l` says every source of `want` (name -> nodes) is LIVE with exactly its nodes.
bool complete(const v1::ListSourcesResponse& l, const std::map<std::string, uint32_t>& want) {
  size_t matched = 0;
  for (const auto& s : l.sources()) {
    auto it = want.find(s.name());
    if (it == want.end()) {
      continue;
    }
    if (s.state() != v1::LIVE || s.nodes() != it->second) {
      return false;
    }
    ++matched;
  }
  return matched == want.size();
}

std::map<std::string, uint32_t> expected(const Sources& sources, size_t n, uint32_t nodes) {
  std::map<std::string, uint32_t> want;
  for (size_t i = 0; i < n; ++i) {
    want[sources[i]->name()] = nodes;
  }
  return want;
}

/// "3 of 10 sources LIVE, 4500 nodes; wide-004 UNAVAILABLE, 0 nodes: connect ...": what a
/// view lacks, with the first few incomplete sources and why.
std::string describe(const v1::ListSourcesResponse& l,
                     const std::map<std::string, uint32_t>& want) {
  size_t live = 0;
  uint64_t nodes = 0;
  std::string missing;
  int shown = 0;
  for (const auto& s : l.sources()) {
    live += s.state() == v1::LIVE ? 1 : 0;
    nodes += s.nodes();
    auto it = want.find(s.name());
    if ((it == want.end() || s.state() != v1::LIVE || s.nodes() != it->second) && shown++ < 3) {
      missing += "; " + s.name() + " " + v1::SourceState_Name(s.state()) + ", " +
                 std::to_string(s.nodes()) + " nodes" +
                 (s.last_error().empty() ? "" : ": " + s.last_error());
    }
  }
  return std::to_string(live) + " of " + std::to_string(l.sources_size()) + " sources LIVE, " +
         std::to_string(nodes) + " nodes" + missing;
}

/// Polls GET /v1/sources every `every` until the view is complete; false (with an error)
/// after `timeout`. A wait past 2 s says once what the view lacks then (a slow round's why).
bool waitComplete(Relay& relay, const std::map<std::string, uint32_t>& want, milliseconds timeout,
                  const std::string& what, milliseconds every = milliseconds(10)) {
  const auto t0 = Clock::now();
  std::string last = "no answer";
  bool noted = false;
  while (Clock::now() < t0 + timeout) {
    if (auto l = relay.sources()) {
      if (complete(*l, want)) {
        return true;
      }
      last = describe(*l, want);
    }
    if (!noted && Clock::now() > t0 + seconds(2)) {
      noted = true;
      std::printf("  note (%s): not complete after 2 s: %s\n", what.c_str(), last.c_str());
    }
    std::this_thread::sleep_for(every);  // Polling a condition with a deadline.
  }
  failure(what + ": the relay's view was not complete in " +
          std::to_string(timeout.count() / 1000) + " s (" + last + ")");
  return false;
}

// ---- Watchers ----------------------------------------------------------------------------

/// A gRPC WatchNodes stream (initial state first) read by a plain blocking reader on its
/// own thread, so no client-side callback executor sits between the socket and the clock.
class GrpcWatch {
 public:
  using OnEvent = std::function<void(const v1::NodeEvent&, Clock::time_point)>;
  GrpcWatch(uint16_t port, OnEvent on_event) : on_event_(std::move(on_event)) {
    stub_ = v1::Registry::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                                      grpc::InsecureChannelCredentials()));
    ctx_.AddMetadata("authorization", std::string("Bearer ") + kToken);
    v1::WatchNodesRequest req;
    req.set_send_initial_state(true);
    req.set_progress_interval_ms(60000);
    reader_ = stub_->WatchNodes(&ctx_, req);
    thread_ = std::thread([this] { run(); });
  }
  ~GrpcWatch() {
    ctx_.TryCancel();
    thread_.join();
  }
  /// True once the initial state arrived (false after `timeout`).
  bool waitReady(milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (!ready_ && !ended_ && Clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(2));  // Polling, bounded.
    }
    return ready_;
  }
  bool ended() const { return ended_; }

 private:
  void run() {
    v1::WatchNodesResponse msg;
    while (reader_->Read(&msg)) {
      const auto now = Clock::now();
      if (msg.initial_state_complete()) {
        ready_ = true;
      }
      for (const auto& e : msg.events()) {
        on_event_(e, now);
      }
    }
    reader_->Finish();
    ended_ = true;
  }

  OnEvent on_event_;
  std::unique_ptr<v1::Registry::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<v1::WatchNodesResponse>> reader_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> ended_{false};
  std::thread thread_;
};

/// An SSE stream (GET /v1/watch?initial=true) read by a blocking reader on its own thread;
/// tells the name of each REGISTERED change.
class SseWatch {
 public:
  using OnName = std::function<void(const std::string&, Clock::time_point)>;
  SseWatch(uint16_t port, OnName on_registered)
      : on_registered_(std::move(on_registered)), fd_(wire::connectTo("127.0.0.1", port)) {
    const std::string req =
        "GET /v1/watch?initial=true HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
        "\r\n\r\n";
    if (fd_ < 0 || !wire::sendAll(fd_, req)) {
      failure("SSE watch on port " + std::to_string(port) + ": cannot connect");
      return;
    }
    thread_ = std::thread([this] { run(); });
  }
  ~SseWatch() {
    if (fd_ >= 0) {
      shutdown(fd_, SHUT_RDWR);  // Wakes the reader.
    }
    if (thread_.joinable()) {
      thread_.join();
    }
    if (fd_ >= 0) {
      close(fd_);
    }
  }
  bool waitReady(milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (!ready_ && Clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(2));  // Polling, bounded.
    }
    return ready_;
  }

 private:
  void run() {
    std::string buf;
    char chunk[65536];
    ssize_t got;
    while ((got = read(fd_, chunk, sizeof chunk)) > 0) {
      const auto now = Clock::now();
      buf.append(chunk, static_cast<size_t>(got));
      size_t start = 0;
      size_t end;
      while ((end = buf.find("\n\n", start)) != std::string::npos) {
        frame(std::string_view(buf.data() + start, end - start), now);
        start = end + 2;
      }
      buf.erase(0, start);
    }
  }
  void frame(std::string_view f, Clock::time_point now) {
    if (f.find("event: initial") != std::string_view::npos) {
      ready_ = true;
      return;
    }
    if (f.find("event: change") == std::string_view::npos ||
        f.find("\"type\":\"REGISTERED\"") == std::string_view::npos) {
      return;
    }
    const auto k = f.find("\"name\":\"");  // The node's: the first name in a change.
    const auto e = k == std::string_view::npos ? k : f.find('"', k + 8);
    if (e != std::string_view::npos) {
      on_registered_(std::string(f.substr(k + 8, e - k - 8)), now);
    }
  }

  OnName on_registered_;
  int fd_;
  std::atomic<bool> ready_{false};
  std::thread thread_;
};

/// When each name's REGISTERED arrived at one watcher.
class Arrivals {
 public:
  void got(const std::string& name, Clock::time_point t) {
    std::lock_guard<std::mutex> lock(mu_);
    at_.emplace(name, t);
    cv_.notify_all();
  }
  std::optional<Clock::time_point> wait(const std::string& name, Clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_until(lock, deadline, [&] { return at_.count(name) != 0; })) {
      return std::nullopt;
    }
    return at_[name];
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Clock::time_point> at_;
};

/// Events a relay watcher received: in all, and REGISTERED / UNREGISTERED per source.
class EventCounter {
 public:
  struct Counts {
    uint64_t total = 0;
    std::map<std::string, uint64_t> registered;
    std::map<std::string, uint64_t> unregistered;
  };
  void got(const v1::NodeEvent& e) {
    std::lock_guard<std::mutex> lock(mu_);
    ++counts_.total;
    if (e.type() == v1::NodeEvent::REGISTERED) {
      ++counts_.registered[e.node().source()];
    } else if (e.type() == v1::NodeEvent::UNREGISTERED) {
      ++counts_.unregistered[e.node().source()];
    }
    cv_.notify_all();
  }
  Counts counts() {
    std::lock_guard<std::mutex> lock(mu_);
    return counts_;
  }
  /// Waits until `done(counts)`; false after `timeout`.
  bool waitFor(const std::function<bool(const Counts&)>& done, milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return done(counts_); });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  Counts counts_;
};

// ---- Figures -----------------------------------------------------------------------------

double quantile(std::vector<double> v, double q) {
  if (v.empty()) {
    return 0;
  }
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(static_cast<double>(v.size()) * q))];
}

/// "1.23 (min 1.10, max 1.40; 3 rounds)": the median of rounds and their spread.
std::string spread(const std::vector<double>& v, const char* format, const char* unit) {
  char a[32], b[32], c[32], out[160];
  std::snprintf(a, sizeof a, format, quantile(v, 0.5));
  std::snprintf(b, sizeof b, format, v.empty() ? 0.0 : *std::min_element(v.begin(), v.end()));
  std::snprintf(c, sizeof c, format, v.empty() ? 0.0 : *std::max_element(v.begin(), v.end()));
  std::snprintf(out, sizeof out, "%s%s (min %s, max %s; %zu samples)", a, unit, b, c, v.size());
  return out;
}

struct Options {
  std::string epmdx = "build/epmdx";
  std::string fleet = "build/epmdx-fleet";
  std::set<std::string> only;
  int samples = 300;
  int wide_sources = 10, wide_nodes = 1500;
  int many_sources = 100, many_nodes = 100;
  int rounds = 3;
  int restarts = 20;
  int small_fleet = 10;
  double churn_seconds = 5;
  bool relay_debug = false;
  bool part(const std::string& name) const { return only.empty() || only.count(name) != 0; }
};

// ---- Latency -----------------------------------------------------------------------------

struct LatencySamples {
  std::vector<double> source_us, relay_us, added_us;
};

/// Registers fresh names on `src` over held connections, each after both watchers saw the
/// previous one; the first 20 warm up and are not counted.
LatencySamples registerPaced(Source& src, Arrivals& at_source, Arrivals& at_relay,
                             const std::string& prefix, int n) {
  constexpr int kWarmup = 20;
  LatencySamples out;
  std::vector<int> fds;
  for (int i = -kWarmup; i < n; ++i) {
    const std::string name = prefix + std::to_string(i + kWarmup);
    const int fd = wire::connectLoopbackFrom(src.epmd(), static_cast<unsigned>(i + kWarmup));
    const auto sent = Clock::now();
    if (fd < 0 || !wire::sendAll(fd, wire::alive2Request(name, 30000))) {
      failure("latency: cannot send ALIVE2 for " + name);
      break;
    }
    fds.push_back(fd);
    const auto reply = wire::parseAlive2Reply(wire::readN(fd, 6, seconds(10)));
    const auto s = at_source.wait(name, sent + seconds(10));
    const auto r = at_relay.wait(name, sent + seconds(10));
    if (!reply || reply->result != 0 || !s || !r) {
      failure("latency: " + name + (!reply || reply->result != 0 ? " refused" : "") +
              (!s ? " not seen by the source's watcher in 10 s" : "") +
              (!r ? " not seen by the relay's watcher in 10 s" : ""));
      break;
    }
    if (i >= 0) {
      using us = std::chrono::duration<double, std::micro>;
      out.source_us.push_back(us(*s - sent).count());
      out.relay_us.push_back(us(*r - sent).count());
      out.added_us.push_back(us(*r - *s).count());
    }
  }
  for (int fd : fds) {
    close(fd);
  }
  return out;
}

void printLatency(const char* api, const LatencySamples& l) {
  const double s99 = quantile(l.source_us, 0.99);
  const double r99 = quantile(l.relay_us, 0.99);
  std::printf(
      "%-4s watch on the source: register -> event p50 %6.0f us  p99 %6.0f us  (%zu samples)\n",
      api, quantile(l.source_us, 0.5), s99, l.source_us.size());
  std::printf(
      "%-4s watch on the relay:  register -> event p50 %6.0f us  p99 %6.0f us  (%zu samples)\n",
      api, quantile(l.relay_us, 0.5), r99, l.relay_us.size());
  std::printf(
      "%-4s the relay adds: p50 %+.0f us, p99 %+.0f us (relay p99 - source p99; target <= "
      "+1000 us: %s); per registration (relay - source) p50 %.0f us p99 %.0f us\n",
      api, quantile(l.relay_us, 0.5) - quantile(l.source_us, 0.5), r99 - s99,
      r99 - s99 <= 1000 ? "met" : "MISSED", quantile(l.added_us, 0.5), quantile(l.added_us, 0.99));
}

GrpcWatch::OnEvent recordRegistered(Arrivals& a) {
  return [&a](const v1::NodeEvent& e, Clock::time_point t) {
    if (e.type() == v1::NodeEvent::REGISTERED) {
      a.got(e.node().name(), t);
    }
  };
}

void grpcLatency(Source& src, Relay& relay, int n) {
  Arrivals at_source, at_relay;
  GrpcWatch ws(src.grpc(), recordRegistered(at_source));
  GrpcWatch wr(relay.grpc(), recordRegistered(at_relay));
  if (!ws.waitReady(seconds(10)) || !wr.waitReady(seconds(10))) {
    failure("latency: a gRPC watcher got no initial state in 10 s");
    return;
  }
  printLatency("gRPC", registerPaced(src, at_source, at_relay, "g", n));
}

void sseLatency(Source& src, Relay& relay, int n) {
  Arrivals at_source, at_relay;
  SseWatch ws(src.http(),
              [&](const std::string& name, Clock::time_point t) { at_source.got(name, t); });
  SseWatch wr(relay.http(),
              [&](const std::string& name, Clock::time_point t) { at_relay.got(name, t); });
  if (!ws.waitReady(seconds(10)) || !wr.waitReady(seconds(10))) {
    failure("latency: an SSE watcher got no initial state in 10 s");
    return;
  }
  printLatency("SSE", registerPaced(src, at_source, at_relay, "s", n));
}

void latencyPart(const Options& o, const Scratch& scratch) {
  std::printf(
      "\n== latency: ALIVE2 on a source -> REGISTERED at a watcher of the relay and at one of "
      "the source, both open at once; each registration after both saw the previous; %d "
      "counted, after 20 not counted ==\n",
      o.samples);
  Sources src = startSources(o.epmdx, scratch, 1, "lat-", true);
  if (errors > 0) {
    return;
  }
  Relay relay(o.fleet, scratch, src, 1);
  relay.start();
  if (!relay.ready(seconds(10)) ||
      !waitComplete(relay, expected(src, 1, 0), seconds(20), "latency")) {
    failure("latency: the relay did not start");
    return;
  }
  grpcLatency(*src[0], relay, o.samples);
  sseLatency(*src[0], relay, o.samples);
}

// ---- Memory ------------------------------------------------------------------------------

struct MemoryRound {
  long relay_empty_kib = 0;
  long relay_full_kib = 0;
  std::vector<double> source_bytes_per_node;  // Each source's own figure.
};

/// One relay, started on the empty sources: its RSS once every source is LIVE, then with
/// every source's nodes relayed. The nodes are closed again at the end.
std::optional<MemoryRound> memoryRound(const Options& o, const Scratch& scratch, Sources& src) {
  const size_t n = src.size();
  Relay relay(o.fleet, scratch, src, n);
  relay.start();
  if (!relay.ready(seconds(10)) ||
      !waitComplete(relay, expected(src, n, 0), seconds(30), "memory (empty sources)")) {
    return std::nullopt;
  }
  // A moment's quiet before the baseline: gRPC starts some of its threads lazily.
  std::this_thread::sleep_for(milliseconds(500));
  MemoryRound r;
  r.relay_empty_kib = rssKib(relay.pid());
  std::vector<long> src0;
  for (auto& s : src) {
    src0.push_back(rssKib(s->pid()));
  }
  if (!registerAll(src, 0, n, o.wide_nodes) ||
      !waitComplete(relay, expected(src, n, static_cast<uint32_t>(o.wide_nodes)), seconds(60),
                    "memory")) {
    return std::nullopt;
  }
  r.relay_full_kib = rssKib(relay.pid());
  for (size_t i = 0; i < n; ++i) {
    r.source_bytes_per_node.push_back(static_cast<double>(rssKib(src[i]->pid()) - src0[i]) *
                                      1024.0 / o.wide_nodes);
  }
  for (auto& s : src) {
    s->closeNodes();
  }
  return r;
}

/// A relay started on sources that already hold their nodes (a relay's restart: every
/// source's whole list at once): its RSS at the complete view.
std::optional<long> listedRound(const Options& o, const Scratch& scratch, const Sources& src) {
  Relay relay(o.fleet, scratch, src, src.size());
  relay.start();
  if (!relay.ready(seconds(10)) ||
      !waitComplete(relay, expected(src, src.size(), static_cast<uint32_t>(o.wide_nodes)),
                    seconds(60), "memory (relay started on full sources)")) {
    return std::nullopt;
  }
  std::this_thread::sleep_for(milliseconds(500));  // As the empty baseline was taken.
  return rssKib(relay.pid());
}

void memoryPart(const Options& o, const Scratch& scratch) {
  const int total = o.wide_sources * o.wide_nodes;
  std::printf(
      "\n== memory: relay RSS with %d sources x %d nodes minus its RSS with the same sources "
      "empty, per node; a fresh relay each round ==\n",
      o.wide_sources, o.wide_nodes);
  Sources src = startSources(o.epmdx, scratch, o.wide_sources, "mem-", false);
  if (errors > 0) {
    return;
  }
  std::vector<double> per_node, first_sources, empty_kib;
  for (int r = 0; r < o.rounds; ++r) {
    auto round = memoryRound(o, scratch, src);
    if (!round) {
      return;
    }
    per_node.push_back(static_cast<double>(round->relay_full_kib - round->relay_empty_kib) *
                       1024.0 / total);
    empty_kib.push_back(static_cast<double>(round->relay_empty_kib));
    std::printf(
        "round %d: relay RSS %.1f MB with the sources empty, %.1f MB once their %d nodes "
        "registered\n",
        r + 1, round->relay_empty_kib / 1024.0, round->relay_full_kib / 1024.0, total);
    if (r == 0) {
      first_sources = round->source_bytes_per_node;  // Later rounds reuse freed memory.
    }
  }
  std::printf(
      "relay memory per relayed node, nodes registered while it follows: %s (target <= "
      "1536 B: %s)\n",
      spread(per_node, "%.0f", " B").c_str(), quantile(per_node, 0.5) <= 1536 ? "met" : "MISSED");
  std::printf("the sources' own memory per node: %s (one per source, %d nodes each, round 1)\n",
              spread(first_sources, "%.0f", " B").c_str(), o.wide_nodes);
  if (!registerAll(src, 0, src.size(), o.wide_nodes)) {
    return;
  }
  std::vector<double> listed;
  for (int r = 0; r < o.rounds; ++r) {
    const auto kib = listedRound(o, scratch, src);
    if (!kib) {
      return;
    }
    listed.push_back((static_cast<double>(*kib) - quantile(empty_kib, 0.5)) * 1024.0 / total);
  }
  std::printf(
      "relay memory per relayed node, relay started on the full sources (RSS at the "
      "complete view minus the median empty RSS above): %s (target <= 1536 B: %s)\n",
      spread(listed, "%.0f", " B").c_str(), quantile(listed, 0.5) <= 1536 ? "met" : "MISSED");
}

// ---- Time to a complete view -------------------------------------------------------------

/// The RSS of a relay following `src` while they hold no node, once every one is LIVE.
std::optional<long> emptyRelayKib(const Options& o, const Scratch& scratch, const Sources& src) {
  Relay relay(o.fleet, scratch, src, src.size());
  relay.start();
  if (!relay.ready(seconds(10)) ||
      !waitComplete(relay, expected(src, src.size(), 0), seconds(60), "empty fleet")) {
    return std::nullopt;
  }
  std::this_thread::sleep_for(milliseconds(500));  // As memoryRound's baseline.
  return rssKib(relay.pid());
}

/// A fleet for the startup figures: `n` daemons started at once, the RSS of a relay that
/// follows them empty, then `nodes` registered on each.
struct Fleet {
  Sources src;
  long empty_relay_kib = 0;
};

Fleet startFleet(const Options& o, const Scratch& scratch, int n, int nodes,
                 const std::string& prefix) {
  const auto t0 = Clock::now();
  Fleet f{startSources(o.epmdx, scratch, n, prefix, false)};
  if (errors > 0) {
    return f;
  }
  const double started = since(t0);
  long rss = 0;
  for (auto& s : f.src) {
    rss += rssKib(s->pid());
  }
  const auto empty = emptyRelayKib(o, scratch, f.src);
  if (!empty) {
    return f;
  }
  f.empty_relay_kib = *empty;
  const auto t1 = Clock::now();
  if (!registerAll(f.src, 0, f.src.size(), nodes)) {
    return f;
  }
  std::printf(
      "fleet of %d daemons: started at once, every port open in %.2f s (RSS %.0f MB in all); a "
      "relay following them empty: RSS %.1f MB; %d nodes each registered in %.2f s (held "
      "connections)\n",
      n, started, rss / 1024.0, f.empty_relay_kib / 1024.0, nodes, since(t1));
  return f;
}

struct StartupRound {
  double ports_s = 0;
  double complete_s = 0;
  double cpu_s = 0;
  double rss_mb = 0;
};

std::optional<StartupRound> startupRound(const Options& o, const Scratch& scratch,
                                         const Sources& src, size_t n, uint32_t nodes) {
  Relay relay(o.fleet, scratch, src, n);
  const auto want = expected(src, n, nodes);
  const auto t0 = Clock::now();
  relay.start();
  if (!relay.ready(seconds(10))) {
    failure("startup: the relay's ports did not open in 10 s");
    return std::nullopt;
  }
  StartupRound r;
  r.ports_s = since(t0);
  if (!waitComplete(relay, want, seconds(120), "startup")) {
    return std::nullopt;
  }
  r.complete_s = since(t0);
  r.cpu_s = cpuSeconds(relay.pid());
  r.rss_mb = rssKib(relay.pid()) / 1024.0;
  return r;
}

/// The relay started `rounds` times (a fresh one each) on a fleet that is already up.
/// The relay started `rounds` times (a fresh one each) on a fleet that is already up.
void startupPart(const Options& o, const Scratch& scratch, const Fleet& f, int nodes) {
  std::vector<double> ports, complete, cpu, rss, per_node;
  const double total = static_cast<double>(f.src.size()) * nodes;
  for (int r = 0; r < o.rounds; ++r) {
    auto round = startupRound(o, scratch, f.src, f.src.size(), static_cast<uint32_t>(nodes));
    if (!round) {
      return;
    }
    ports.push_back(round->ports_s * 1000);
    complete.push_back(round->complete_s * 1000);
    cpu.push_back(round->cpu_s * 1000);
    rss.push_back(round->rss_mb);
    per_node.push_back((round->rss_mb * 1024 - static_cast<double>(f.empty_relay_kib)) * 1024 /
                       total);
  }
  std::printf(
      "%zu sources x %d nodes: relay start -> complete view (GET /v1/sources: every "
      "source LIVE with all its nodes) %s\n",
      f.src.size(), nodes, spread(complete, "%.0f", " ms").c_str());
  std::printf("  relay start -> its ports open %s; relay CPU at the complete view %s\n",
              spread(ports, "%.0f", " ms").c_str(), spread(cpu, "%.0f", " ms").c_str());
  std::printf("  relay RSS at the complete view %s: %s per node beyond the empty fleet's\n",
              spread(rss, "%.1f", " MB").c_str(), spread(per_node, "%.0f", " B").c_str());
}

// ---- One source restarting ---------------------------------------------------------------

uint64_t valueOf(const std::map<std::string, uint64_t>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? 0 : it->second;
}

struct RestartSample {
  double window_s = 0;
  double cpu_s = 0;
  uint64_t events = 0;
};

/// Whether the relay's ListNodes for `source` holds exactly node0..node{nodes-1}, each at
/// port_base + i: the view after a restart is the source's new one, not the old one.
bool relayHolds(Relay& relay, const std::string& source, int nodes, int port_base) {
  auto stub = v1::Registry::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(relay.grpc()),
                                                        grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", std::string("Bearer ") + kToken);
  ctx.set_deadline(std::chrono::system_clock::now() + seconds(10));
  v1::ListNodesRequest req;
  req.set_source(source);
  v1::ListNodesResponse resp;
  const auto status = stub->ListNodes(&ctx, req, &resp);
  int right = 0;
  for (const auto& n : resp.nodes()) {
    right += n.name() == "node" + std::to_string(static_cast<int>(n.port()) - port_base) ? 1 : 0;
  }
  if (!status.ok() || resp.nodes_size() != nodes || right != nodes) {
    failure("restart: the relay lists " + std::to_string(resp.nodes_size()) + " nodes of " +
            source + ", " + std::to_string(right) + " at their new ports, after its restart (" +
            std::to_string(nodes) + " expected; " + status.error_message() + ")");
    return false;
  }
  return true;
}

/// SIGKILLs `victim` and starts it again on its ports; once the relay has listed it again
/// (every old node UNREGISTERED at the relay's watcher: a pod's daemon is up well before its
/// VMs register again), registers its nodes again at new ports. Measured until the watcher
/// saw them all REGISTERED.
std::optional<RestartSample> restartOnce(Relay& relay, EventCounter& counter, Source& victim,
                                         int nodes, int port_base) {
  const auto c0 = counter.counts();
  const std::string& name = victim.name();
  const auto n = static_cast<uint64_t>(nodes);
  const auto grew = [&](const std::map<std::string, uint64_t> EventCounter::Counts::*field) {
    return [&, field](const EventCounter::Counts& c) {
      return valueOf(c.*field, name) - valueOf(c0.*field, name) >= n;
    };
  };
  const double cpu0 = cpuSeconds(relay.pid());
  const auto t0 = Clock::now();
  victim.kill9();
  victim.start();
  if (!victim.ready(seconds(10))) {
    failure("restart: " + name + " did not come back in 10 s");
    return std::nullopt;
  }
  const double up = since(t0);
  if (!counter.waitFor(grew(&EventCounter::Counts::unregistered), seconds(30))) {
    failure("restart: the relay's watcher did not see " + name + "'s nodes leave in 30 s");
    return std::nullopt;
  }
  const double left = since(t0);
  if (!victim.registerNodes(nodes, port_base)) {
    return std::nullopt;
  }
  const double registered = since(t0);
  if (!counter.waitFor(grew(&EventCounter::Counts::registered), seconds(30))) {
    failure("restart: the relay's watcher did not see " + name + "'s nodes come back in 30 s");
    return std::nullopt;
  }
  if (since(t0) > 1) {
    std::printf(
        "  note: a slow restart of %s: its ports open at %.3f s, its old nodes gone at the "
        "relay's watcher at %.3f s, registered again at %.3f s, at the watcher at %.3f s\n",
        name.c_str(), up, left, registered, since(t0));
  }
  RestartSample s;
  s.window_s = since(t0);
  s.cpu_s = cpuSeconds(relay.pid()) - cpu0;
  s.events = counter.counts().total - c0.total;
  if (!relayHolds(relay, name, nodes, port_base)) {
    return std::nullopt;
  }
  return s;
}

struct RestartFigures {
  double cpu_ms = 0;  // Per restart, the idle rate's share taken out.
  double raw_cpu_ms = 0;
  double events = 0;
};

/// A relay following the first `k` sources; `o.restarts` restarts of one of them each.
std::optional<RestartFigures> restartCase(const Options& o, const Scratch& scratch, Sources& src,
                                          size_t k) {
  Relay relay(o.fleet, scratch, src, k);
  relay.start();
  const auto want = expected(src, k, static_cast<uint32_t>(o.many_nodes));
  if (!relay.ready(seconds(10)) || !waitComplete(relay, want, seconds(120), "restart")) {
    return std::nullopt;
  }
  EventCounter counter;
  GrpcWatch watch(relay.grpc(), [&](const v1::NodeEvent& e, Clock::time_point) { counter.got(e); });
  if (!watch.waitReady(seconds(20))) {
    failure("restart: the relay's watcher got no initial state in 20 s");
    return std::nullopt;
  }
  // The relay's own cost of following k sources (progress messages, keepalive pings).
  const double idle0 = cpuSeconds(relay.pid());
  const auto t_idle = Clock::now();
  std::this_thread::sleep_for(seconds(5));  // The idle window measured, not a wait.
  const double idle_rate = (cpuSeconds(relay.pid()) - idle0) / since(t_idle);
  std::vector<double> cpu, raw, events, windows;
  const auto threads0 = threadCpu(relay.pid());
  for (int r = 0; r < o.restarts; ++r) {
    static int restarts = 0;  // Each restart's nodes come back at ports of their own.
    auto s = restartOnce(relay, counter, *src[static_cast<size_t>(r) % k], o.many_nodes,
                         21000 + 100 * (++restarts % 90));
    if (!s || !waitComplete(relay, want, seconds(30), "restart (settling)")) {
      return std::nullopt;
    }
    raw.push_back(s->cpu_s * 1000);
    cpu.push_back((s->cpu_s - idle_rate * s->window_s) * 1000);
    events.push_back(static_cast<double>(s->events));
    windows.push_back(s->window_s * 1000);
  }
  const std::string by_thread = cpuBreakdown(threads0, threadCpu(relay.pid()));
  double sum_raw = 0, sum_cpu = 0, sum_events = 0;
  for (size_t i = 0; i < raw.size(); ++i) {
    sum_raw += raw[i];
    sum_cpu += cpu[i];
    sum_events += events[i];
  }
  const double n = static_cast<double>(raw.size());
  std::printf(
      "fleet of %3zu sources: per restart: relay CPU %.1f ms (utime+stime over the restart; "
      "%.1f ms of it the idle rate %.1f ms/s), events emitted %s, window %s; %d restarts\n"
      "  relay CPU by thread over the restarts (idle included): %s\n",
      k, sum_raw / n, (sum_raw - sum_cpu) / n, idle_rate * 1000, spread(events, "%.0f", "").c_str(),
      spread(windows, "%.0f", " ms").c_str(), o.restarts, by_thread.c_str());
  return RestartFigures{sum_cpu / n, sum_raw / n, sum_events / n};
}

void restartPart(const Options& o, const Scratch& scratch, Sources& src) {
  std::printf(
      "\n== restart: one source of %d nodes SIGKILLed, started again on its ports, its nodes "
      "registered again; relay CPU and events, in a fleet of %d sources and of %zu ==\n",
      o.many_nodes, o.small_fleet, src.size());
  const auto small =
      restartCase(o, scratch, src, std::min(src.size(), static_cast<size_t>(o.small_fleet)));
  if (!small) {
    return;
  }
  const auto big = restartCase(o, scratch, src, src.size());
  if (!big) {
    return;
  }
  std::printf(
      "restart cost, fleet of %zu / fleet of %d: CPU x%.2f without the idle rate (x%.2f with "
      "it), events x%.2f (in proportion to the source's nodes: about x1)\n",
      src.size(), o.small_fleet, big->cpu_ms / small->cpu_ms, big->raw_cpu_ms / small->raw_cpu_ms,
      big->events / small->events);
}

// ---- CPU per event -----------------------------------------------------------------------

/// Registers and unregisters fresh names on the first `k` sources, round robin, from two
/// threads for `secs` seconds: each cycle is one REGISTERED and one UNREGISTERED on a source.
uint64_t churn(const Sources& src, size_t k, double secs, int round) {
  std::atomic<uint64_t> cycles{0};
  std::atomic<uint64_t> failed{0};
  const auto end = Clock::now() + std::chrono::duration<double>(secs);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      for (unsigned i = 0; Clock::now() < end; ++i) {
        const uint16_t port = src[(i * 2 + static_cast<unsigned>(t)) % k]->epmd();
        const std::string name =
            "churn" + std::to_string(round) + "-" + std::to_string(t) + "-" + std::to_string(i);
        const int fd = wire::connectLoopbackFrom(port, i);
        if (fd < 0 || !wire::sendAll(fd, wire::alive2Request(name, 31000))) {
          ++failed;
        } else {
          const auto reply = wire::parseAlive2Reply(wire::readN(fd, 6, seconds(5)));
          ++(reply && reply->result == 0 ? cycles : failed);
        }
        if (fd >= 0) {
          close(fd);
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  if (failed > 0) {
    failure("churn: " + std::to_string(failed.load()) + " registrations failed");
  }
  return cycles;
}

struct CpuRound {
  double relay_us = 0;
  double relay_switches = 0;  // Context switches per event.
  double source_us = 0;
  double rate = 0;
  uint64_t events = 0;
};

std::optional<CpuRound> cpuRound(const Options& o, Relay& relay, EventCounter& counter,
                                 const Sources& src, size_t k, int r) {
  const uint64_t c0 = counter.counts().total;
  const double relay0 = cpuSeconds(relay.pid());
  const long switches0 = contextSwitches(relay.pid());
  const double src0 = sumCpu(src, k);
  const auto t0 = Clock::now();
  const uint64_t cycles = churn(src, k, o.churn_seconds, r);
  const double churned = since(t0);
  if (!counter.waitFor([&](const EventCounter::Counts& c) { return c.total - c0 >= 2 * cycles; },
                       seconds(60))) {
    failure("cpu: the relay's watcher did not get the churn's " + std::to_string(2 * cycles) +
            " events in 60 s");
    return std::nullopt;
  }
  CpuRound out;
  out.events = counter.counts().total - c0;
  out.relay_us = (cpuSeconds(relay.pid()) - relay0) * 1e6 / static_cast<double>(out.events);
  out.source_us = (sumCpu(src, k) - src0) * 1e6 / static_cast<double>(2 * cycles);
  out.relay_switches = static_cast<double>(contextSwitches(relay.pid()) - switches0) /
                       static_cast<double>(out.events);
  out.rate = static_cast<double>(2 * cycles) / churned;
  return out;
}

void cpuPart(const Options& o, const Scratch& scratch, const Sources& src) {
  const size_t k = std::min(src.size(), static_cast<size_t>(o.small_fleet));
  std::printf(
      "\n== cpu: a churn of registrations and unregistrations on %zu sources (%d nodes held on "
      "each), %.0f s a round; relay CPU per event relayed to its one gRPC watcher, beside the "
      "sources' own (each has one watcher: the relay) ==\n",
      k, o.many_nodes, o.churn_seconds);
  Relay relay(o.fleet, scratch, src, k);
  relay.start();
  if (!relay.ready(seconds(10)) ||
      !waitComplete(relay, expected(src, k, static_cast<uint32_t>(o.many_nodes)), seconds(60),
                    "cpu")) {
    return;
  }
  EventCounter counter;
  GrpcWatch watch(relay.grpc(), [&](const v1::NodeEvent& e, Clock::time_point) { counter.got(e); });
  if (!watch.waitReady(seconds(20))) {
    failure("cpu: the relay's watcher got no initial state in 20 s");
    return;
  }
  std::vector<double> relay_us, source_us, rates, switches;
  uint64_t events = 0;
  const auto threads0 = threadCpu(relay.pid());
  for (int r = 0; r < o.rounds; ++r) {
    auto round = cpuRound(o, relay, counter, src, k, r);
    if (!round) {
      return;
    }
    relay_us.push_back(round->relay_us);
    source_us.push_back(round->source_us);
    rates.push_back(round->rate);
    switches.push_back(round->relay_switches);
    events += round->events;
  }
  std::printf("churn: %s, %llu events relayed in all\n", spread(rates, "%.0f", " events/s").c_str(),
              static_cast<unsigned long long>(events));
  std::printf("relay CPU per event relayed: %s; relay context switches per event %s\n",
              spread(relay_us, "%.1f", " us").c_str(), spread(switches, "%.1f", "").c_str());
  std::printf("source CPU per event (its epmd port, registry, one watcher): %s\n",
              spread(source_us, "%.1f", " us").c_str());
  std::printf("  relay CPU by thread over the churn: %s\n",
              cpuBreakdown(threads0, threadCpu(relay.pid())).c_str());
}

// ---- Command line ------------------------------------------------------------------------

bool parseSize(const std::string& v, int& sources, int& nodes) {
  const auto x = v.find('x');
  if (x == std::string::npos) {
    return false;
  }
  sources = std::atoi(v.c_str());
  nodes = std::atoi(v.c_str() + x + 1);
  return sources > 0 && nodes >= 0;
}

std::optional<Options> parseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const std::string v = a.substr(a.find('=') + 1);
    const auto is = [&a](const char* flag) { return a.rfind(flag, 0) == 0; };
    bool ok = true;
    if (is("--epmdx=")) {
      o.epmdx = v;
    } else if (is("--fleet=")) {
      o.fleet = v;
    } else if (is("--only=")) {
      for (size_t s = 0, e; s <= v.size(); s = e + 1) {
        e = std::min(v.find(',', s), v.size());
        o.only.insert(v.substr(s, e - s));
      }
    } else if (is("--samples=")) {
      o.samples = std::atoi(v.c_str());
    } else if (is("--wide=")) {
      ok = parseSize(v, o.wide_sources, o.wide_nodes);
    } else if (is("--many=")) {
      ok = parseSize(v, o.many_sources, o.many_nodes);
    } else if (is("--rounds=")) {
      o.rounds = std::max(1, std::atoi(v.c_str()));
    } else if (is("--restarts=")) {
      o.restarts = std::max(1, std::atoi(v.c_str()));
    } else if (is("--small-fleet=")) {
      o.small_fleet = std::max(1, std::atoi(v.c_str()));
    } else if (is("--churn-seconds=")) {
      o.churn_seconds = std::atof(v.c_str());
    } else if (a == "--relay-debug") {
      o.relay_debug = true;
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "bad argument %s (see the top of bench/fleet_bench.cc)\n", a.c_str());
      return std::nullopt;
    }
  }
  for (const auto& p : o.only) {
    if (p != "latency" && p != "memory" && p != "startup" && p != "restart" && p != "cpu") {
      std::fprintf(stderr, "--only: unknown part %s\n", p.c_str());
      return std::nullopt;
    }
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const auto parsed = parseArgs(argc, argv);
  if (!parsed) {
    return 2;
  }
  const Options& o = *parsed;
  prepareProcess();
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // Figures survive a run cut short.
  const auto t0 = Clock::now();
  {
    Scratch scratch(o.relay_debug);
    std::printf("fleet relay benchmark: %s following %s daemons, loopback, %ld cores\n",
                o.fleet.c_str(), o.epmdx.c_str(), sysconf(_SC_NPROCESSORS_ONLN));
    if (o.part("latency") && errors == 0) {
      latencyPart(o, scratch);
    }
    if (o.part("memory") && errors == 0) {
      memoryPart(o, scratch);
    }
    if (o.part("startup") && errors == 0) {
      std::printf("\n== startup: relay start -> complete view; a fresh relay each round ==\n");
      Fleet wide = startFleet(o, scratch, o.wide_sources, o.wide_nodes, "wide-");
      if (errors == 0) {
        startupPart(o, scratch, wide, o.wide_nodes);
      }
    }
    if ((o.part("startup") || o.part("restart") || o.part("cpu")) && errors == 0) {
      if (!o.part("startup")) {
        std::printf("\n");
      }
      Fleet many = startFleet(o, scratch, o.many_sources, o.many_nodes, "many-");
      if (o.part("startup") && errors == 0) {
        startupPart(o, scratch, many, o.many_nodes);
      }
      if (o.part("restart") && errors == 0) {
        restartPart(o, scratch, many.src);
      }
      if (o.part("cpu") && errors == 0) {
        cpuPart(o, scratch, many.src);
      }
    }
    std::printf("\n%s in %.0f s: %d errors\n", errors == 0 ? "done" : "FAILED", since(t0),
                errors.load());
  }
  return errors == 0 ? 0 : 1;
}
