// The fleet relay's follower of one source (fleet::SourceStream) against real epmdx daemons:
// identity then a snapshot then live events, in order and each once; a killed source reported
// at once; a restarted one (same ports, a new run) listed again; a network blip resumed
// without a list; a resume point past the history listed again; a wrong token refused; a
// SIGSTOPped source reported by the silence watchdog and resumed after SIGCONT; evictions
// through the stream with their preconditions; TLS with a CA and a server name; stop()
// quick in every state.

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "server/fleet/source_stream.h"
#include "tests/support/net.h"
#include "tests/support/process.h"
#include "tests/support/tcp_proxy.h"

namespace epmdx::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using fleet::SourceIdentity;
using fleet::SourceStream;
using fleet::SourceStreamOptions;
using std::chrono::milliseconds;

constexpr const char* kAdmin = "fleet-admin-token";
constexpr const char* kReader = "fleet-reader-token";

int counter = 0;

std::string tempBase() {
  return "/tmp/epmdx-stream-" + std::to_string(getpid()) + "-" + std::to_string(++counter);
}

/// The real epmdx on ports chosen once, so that it can be killed and started again on the
/// very same ones (a restarted pod behind the same address). EpmdxDaemon picks new ports
/// per instance, hence this small twin.
class Daemon {
 public:
  explicit Daemon(std::vector<std::string> extra = {})
      : epmd_(freePort()), grpc_(freePort()), http_(freePort()), extra_(std::move(extra)) {
    tokens_ = tempBase() + ".tokens";
    std::ofstream(tokens_) << kAdmin << " read evict name=fleet\n"
                           << kReader << " read name=reader\n";
  }
  ~Daemon() {
    if (process_) {
      process_->signal(SIGCONT);  // A test that failed while it was stopped.
    }
    process_.reset();
    unlink(tokens_.c_str());
  }

  /// Starts it (again) and waits for its ports.
  bool start() {
    std::vector<std::string> argv{epmdxBinary(),
                                  "-port",
                                  std::to_string(epmd_),
                                  "--grpc-listen=127.0.0.1:" + std::to_string(grpc_),
                                  "--http-listen=127.0.0.1:" + std::to_string(http_),
                                  "--tokens-file=" + tokens_};
    argv.insert(argv.end(), extra_.begin(), extra_.end());
    process_ = std::make_unique<Process>(argv);
    return waitForPort(epmd_, 10s) && waitForPort(grpc_, 10s);
  }
  void kill9() {
    process_->signal(SIGKILL);
    process_->wait(5s);
  }
  void signal(int sig) { process_->signal(sig); }
  std::string stderrText() const { return process_ ? process_->stderrText() : ""; }

  uint16_t epmdPort() const { return epmd_; }
  uint16_t grpcPort() const { return grpc_; }
  std::string grpcAddress() const { return "127.0.0.1:" + std::to_string(grpc_); }

 private:
  uint16_t epmd_;
  uint16_t grpc_;
  uint16_t http_;
  std::vector<std::string> extra_;
  std::string tokens_;
  std::unique_ptr<Process> process_;
};

/// A fake node: an epmd connection that registered a name and holds it until closed.
class Node {
 public:
  Node(uint16_t epmd, const std::string& name, uint16_t port = 9500) {
    fd_ = connectTo("127.0.0.1", epmd);
    EXPECT_GE(fd_, 0);
    EXPECT_TRUE(sendAll(fd_, frame(alive2Body(name, port))));
    const std::string reply = readN(fd_, 6, 5s);
    EXPECT_EQ(reply.substr(0, 2), bytes({118, 0})) << "ALIVE2 of " << name << " refused";
  }
  ~Node() { close(); }
  void close() {
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }

 private:
  int fd_ = -1;
};

/// What the sink was told, in order.
struct Record {
  std::vector<SourceIdentity> identities;
  std::vector<std::vector<v1::Node>> snapshots;
  std::vector<uint64_t> snapshot_revisions;
  std::vector<v1::NodeEvent> events;
  int progress = 0;
  std::vector<std::pair<std::string, bool>> downs;  // error, refused
  std::vector<Clock::time_point> down_times;
  std::vector<std::string> calls;       // "identity", "snapshot", "events", "progress", "down"
  std::vector<std::string> violations;  // Broken promises of the SourceSink contract.

  /// How many events of `type` for `name` were given.
  int count(v1::NodeEvent::Type type, const std::string& name) const {
    int n = 0;
    for (const auto& e : events) {
      n += e.type() == type && e.node().name() == name ? 1 : 0;
    }
    return n;
  }
  static bool has(const std::vector<v1::Node>& nodes, const std::string& name) {
    for (const auto& n : nodes) {
      if (n.name() == name) {
        return true;
      }
    }
    return false;
  }
};

/// Records every call and checks the contract as it goes: one thread, an identity before
/// anything else of a connection, revisions that follow on with no gap and no repeat, and
/// no call after stop() returned.
class RecordingSink final : public fleet::SourceSink {
 public:
  void onIdentity(const SourceIdentity& identity) override {
    std::lock_guard<std::mutex> lock(mu_);
    check();
    r_.identities.push_back(identity);
    r_.calls.push_back("identity");
    connected_ = true;
    cv_.notify_all();
  }
  void onSnapshot(std::vector<v1::Node> nodes, uint64_t revision) override {
    std::lock_guard<std::mutex> lock(mu_);
    check();
    if (!connected_) {
      r_.violations.push_back("snapshot before an identity");
    }
    given_ = revision;
    r_.snapshots.push_back(std::move(nodes));
    r_.snapshot_revisions.push_back(revision);
    r_.calls.push_back("snapshot");
    cv_.notify_all();
  }
  void onEvents(std::vector<v1::NodeEvent> events, uint64_t revision) override {
    std::lock_guard<std::mutex> lock(mu_);
    check();
    if (!connected_ || given_ == 0) {
      r_.violations.push_back("events before an identity and a snapshot");
    }
    for (auto& e : events) {
      // Every change of a daemon takes the next revision: anything else is a gap or a repeat.
      if (e.revision() != given_ + 1) {
        r_.violations.push_back("event at " + std::to_string(e.revision()) + " after " +
                                std::to_string(given_));
      }
      given_ = e.revision();
      r_.events.push_back(std::move(e));
    }
    if (revision != given_) {
      r_.violations.push_back("events message revision " + std::to_string(revision) +
                              " is not its last event's " + std::to_string(given_));
    }
    r_.calls.push_back("events");
    cv_.notify_all();
  }
  void onProgress(uint64_t revision) override {
    std::lock_guard<std::mutex> lock(mu_);
    check();
    if (revision < given_) {
      r_.violations.push_back("progress went back");
    }
    given_ = revision;
    ++r_.progress;
    r_.calls.push_back("progress");
    cv_.notify_all();
  }
  void onDown(const std::string& error, bool refused) override {
    std::lock_guard<std::mutex> lock(mu_);
    check();
    connected_ = false;
    r_.downs.emplace_back(error, refused);
    r_.down_times.push_back(Clock::now());
    r_.calls.push_back("down");
    cv_.notify_all();
  }

  /// Waits (bounded) until `pred` holds on the record; true if it did.
  bool waitFor(const std::function<bool(const Record&)>& pred, milliseconds timeout = 10s) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return pred(r_); });
  }
  Record record() {
    std::lock_guard<std::mutex> lock(mu_);
    return r_;
  }
  /// From now on every call is a violation (the stream was stopped).
  void stopped() {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
  }

 private:
  void check() {
    if (stopped_) {
      r_.violations.push_back("a call after stop() returned");
    }
    if (thread_ == std::thread::id()) {
      thread_ = std::this_thread::get_id();
    } else if (thread_ != std::this_thread::get_id()) {
      r_.violations.push_back("a call from a second thread");
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  Record r_;
  bool connected_ = false;
  uint64_t given_ = 0;  // The last revision given.
  bool stopped_ = false;
  std::thread::id thread_;
};

/// True when a TCP connection to 127.0.0.1:port is established (/proc/net/tcp and tcp6:
/// gRPC's sockets are dual-stack, 127.0.0.1 as ::ffff:127.0.0.1).
bool established(uint16_t port) {
  char v4[16];
  char v6[48];
  std::snprintf(v4, sizeof v4, "0100007F:%04X", port);
  std::snprintf(v6, sizeof v6, "0000000000000000FFFF00000100007F:%04X", port);
  for (const char* file : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(file);
    std::string line;
    std::getline(in, line);  // The header.
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state;
      fields >> slot >> local >> remote >> state;
      if ((remote == v4 || remote == v6) && state == "01") {
        return true;
      }
    }
  }
  return false;
}

/// Quick timings for tests: a progress every 300 ms, silence after 1.5 s.
SourceStreamOptions quick(const std::string& address, const std::string& token = kAdmin) {
  SourceStreamOptions o;
  o.address = address;
  o.token = token;
  o.progress_interval = 300ms;
  o.silence_timeout = 1500ms;
  o.backoff_min = 50ms;
  o.backoff_max = 500ms;
  o.rpc_timeout = 1000ms;
  return o;
}

/// Stops the stream, checks that it was quick, and that the sink kept its contract.
void stopAndCheck(SourceStream& stream, RecordingSink& sink, milliseconds bound = 500ms) {
  const auto t0 = Clock::now();
  stream.stop();
  const auto took = Clock::now() - t0;
  sink.stopped();
  EXPECT_LT(took, bound) << "stop() took " << std::chrono::duration_cast<milliseconds>(took).count()
                         << " ms";
  for (const auto& v : sink.record().violations) {
    ADD_FAILURE() << "sink contract: " << v;
  }
}

TEST(SourceStream, IdentityThenASnapshotOfTheRegisteredNodesThenLiveEventsInOrder) {
  Daemon d;
  ASSERT_TRUE(d.start()) << d.stderrText();
  Node a(d.epmdPort(), "alpha", 9501);
  Node b(d.epmdPort(), "beta", 9502);

  RecordingSink sink;
  SourceStream stream(quick(d.grpcAddress()), sink);
  stream.start();
  ASSERT_TRUE(sink.waitFor([](const Record& r) { return !r.snapshots.empty(); }))
      << (sink.record().downs.empty() ? "" : sink.record().downs.back().first);

  Record r = sink.record();
  ASSERT_EQ(r.identities.size(), 1u);
  EXPECT_EQ(r.calls.front(), "identity");
  EXPECT_FALSE(r.identities[0].host.empty());
  ASSERT_FALSE(r.identities[0].clusters.empty());
  EXPECT_EQ(r.identities[0].clusters[0].name(), "default");
  EXPECT_EQ(r.identities[0].clusters[0].port(), d.epmdPort());
  ASSERT_EQ(r.snapshots[0].size(), 2u);
  EXPECT_TRUE(Record::has(r.snapshots[0], "alpha"));
  EXPECT_TRUE(Record::has(r.snapshots[0], "beta"));
  for (const auto& n : r.snapshots[0]) {
    EXPECT_EQ(n.port(), n.name() == "alpha" ? 9501u : 9502u);
  }

  // Live: a registration, then alpha leaves; given in the source's order.
  Node c(d.epmdPort(), "gamma", 9503);
  a.close();
  ASSERT_TRUE(sink.waitFor(
      [](const Record& r) { return r.count(v1::NodeEvent::UNREGISTERED, "alpha") == 1; }));
  r = sink.record();
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_EQ(r.events[0].type(), v1::NodeEvent::REGISTERED);
  EXPECT_EQ(r.events[0].node().name(), "gamma");
  EXPECT_EQ(r.events[1].type(), v1::NodeEvent::UNREGISTERED);
  EXPECT_EQ(r.events[1].reason(), v1::CONNECTION_CLOSED);
  EXPECT_GT(r.events[0].revision(), r.snapshot_revisions[0]);

  // Idle: progress messages carry the revision on.
  const int before = r.progress;
  ASSERT_TRUE(sink.waitFor([&](const Record& r) { return r.progress >= before + 2; }));
  EXPECT_TRUE(sink.record().downs.empty());
  stopAndCheck(stream, sink);
}

TEST(SourceStream, AnEmptySourceGivesAnEmptySnapshot) {
  Daemon d;
  ASSERT_TRUE(d.start()) << d.stderrText();
  RecordingSink sink;
  SourceStream stream(quick(d.grpcAddress()), sink);
  stream.start();
  ASSERT_TRUE(sink.waitFor([](const Record& r) { return !r.snapshots.empty(); }));
  EXPECT_TRUE(sink.record().snapshots[0].empty());
  EXPECT_GT(sink.record().snapshot_revisions[0], 0u);
  stopAndCheck(stream, sink);
}

TEST(SourceStream, AnIdleStreamWithOneSecondKeepaliveStaysUp) {
  // gRPC servers close a connection that pings too often between their data frames
  // (too_many_pings): the keepalive must not cost the stream.
  Daemon d;
  ASSERT_TRUE(d.start()) << d.stderrText();
  RecordingSink sink;
  auto o = quick(d.grpcAddress());
  o.progress_interval = 1000ms;
  o.silence_timeout = 3000ms;
  SourceStream stream(o, sink);
  stream.start();
  ASSERT_TRUE(sink.waitFor([](const Record& r) { return r.progress >= 6; }, 15s));
  const Record r = sink.record();
  EXPECT_TRUE(r.downs.empty()) << r.downs.front().first;
  EXPECT_EQ(r.identities.size(), 1u);
  stopAndCheck(stream, sink);
}

TEST(SourceStream, AKilledSourceIsDownWithinTwoSeconds) {
  Daemon d;
  ASSERT_TRUE(d.start()) << d.stderrText();
  RecordingSink sink;
  SourceStream stream(quick(d.grpcAddress()), sink);
  stream.start();
  ASSERT_TRUE(sink.waitFor([](const Record& r) { return !r.snapshots.empty(); }));

  const auto killed = Clock::now();
  d.kill9();
  ASSERT_TRUE(sink.waitFor([](const Record& r) { return !r.downs.empty(); }, 5s));
  const Record r = sink.record();
  EXPECT_LT(r.down_times[0] - killed, 2s);
  EXPECT_FALSE(r.downs[0].second) << "not a refusal: " << r.downs[0].first;
  EXPECT_NE(r.downs[0].first.find(d.grpcAddress()), std::string::npos) << r.downs[0].first;
  // Then it keeps trying, and says why each try failed.
  ASSERT_TRUE(sink.waitFor([](const Record& r) { return r.downs.size() >= 2; }, 5s));
  EXPECT_EQ(sink.record().downs[1].first, "connect " + d.grpcAddress() + ": connection refused");
  stopAndCheck(stream, sink);
}

TEST(SourceStream, ARestartOnTheSamePortsIsANewIdentityAndAFreshSnapshot) {
  Daemon d;
  ASSERT_TRUE(d.start()) << d.stderrText();
  auto before = std::make_unique<Node>(d.epmdPort(), "before");
  RecordingSink sink;
  SourceStream stream(quick(d.grpcAddress()), sink);
  stream.start();
  ASSERT_TRUE(sink.waitFor([](const Record& r) { return !r.snapshots.empty(); }));
  ASSERT_TRUE(Record::has(sink.record().snapshots[0], "before"));

  d.kill9();
  before.reset();
  ASSERT_TRUE(d.start()) << d.stderrText();
  Node after(d.epmdPort(), "after");
  ASSERT_TRUE(sink.waitFor([](const Record& r) {
    return r.snapshots.size() >= 2 && (Record::has(r.snapshots.back(), "after") ||
                                       r.count(v1::NodeEvent::REGISTERED, "after") == 1);
  }));
  const Record r = sink.record();
  ASSERT_EQ(r.snapshots.size(), 2u) << "listed again once, not resumed";
  EXPECT_FALSE(Record::has(r.snapshots[1], "before")) << "the old run's node is gone";
  ASSERT_GE(r.identities.size(), 2u);
  EXPECT_NE(r.identities.front().boot_epoch, 0u) << "the daemon tells its boot epoch";
  EXPECT_NE(r.identities.back().boot_epoch, r.identities.front().boot_epoch);
  EXPECT_GT(r.snapshot_revisions[1], r.snapshot_revisions[0]);
  EXPECT_EQ(r.count(v1::NodeEvent::UNREGISTERED, "before"), 0)
      << "a restart is a new list, not events the old run never sent";
  stopAndCheck(stream, sink);
}

TEST(SourceStream, ABlipResumesWithoutAListAndEventsOfTheBlipArriveOnce) {
  Daemon d;
  ASSERT_TRUE(d.start()) << d.stderrText();
  TcpProxy proxy(d.grpcPort());
  auto a = std::make_unique<Node>(d.epmdPort(), "stays");
  auto leaves = std::make_unique<Node>(d.epmdPort(), "leaves");
  RecordingSink sink;
  auto o = quick("127.0.0.1:" + std::to_string(proxy.port()));
  // A reconnect a whole second later: the registrations below surely fall inside the blip.
  o.backoff_min = 1000ms;
  o.backoff_max = 1000ms;
  SourceStream stream(o, sink);
  stream.start();
  ASSERT_TRUE(sink.waitFor([](const Record& r) { return !r.snapshots.empty(); }));

  proxy.cutAll();
  ASSERT_TRUE(sink.waitFor([](const Record& r) { return !r.downs.empty(); }, 5s));
  Node during(d.epmdPort(), "during");
  leaves.reset();
  ASSERT_TRUE(sink.waitFor(
      [](const Record& r) { return r.count(v1::NodeEvent::UNREGISTERED, "leaves") >= 1; }));
  // And one change after the resume, so that nothing given twice could hide at the end.
  Node later(d.epmdPort(), "later");
  ASSERT_TRUE(sink.waitFor(
      [](const Record& r) { return r.count(v1::NodeEvent::REGISTERED, "later") >= 1; }));

  const Record r = sink.record();
  EXPECT_EQ(r.snapshots.size(), 1u) << "resumed, not listed again";
  EXPECT_EQ(r.identities.size(), 2u);
  EXPECT_EQ(r.identities[0].boot_epoch, r.identities[1].boot_epoch);
  EXPECT_EQ(r.downs.size(), 1u);
  EXPECT_FALSE(r.downs[0].second);
  EXPECT_EQ(r.count(v1::NodeEvent::REGISTERED, "during"), 1);
  EXPECT_EQ(r.count(v1::NodeEvent::UNREGISTERED, "leaves"), 1);
  EXPECT_EQ(r.count(v1::NodeEvent::REGISTERED, "later"), 1);
  EXPECT_GE(proxy.connectionsSeen(), 2);
  stopAndCheck(stream, sink);
}

TEST(SourceStream, AResumePointPastTheHistoryListsAgainOnTheSameConnection) {
  Daemon d({"--history-size=16"});
  ASSERT_TRUE(d.start()) << d.stderrText();
  TcpProxy proxy(d.grpcPort());
  Node stays(d.epmdPort(), "stays");
  RecordingSink sink;
  auto o = quick("127.0.0.1:" + std::to_string(proxy.port()));
  o.backoff_min = 1000ms;
  o.backoff_max = 1000ms;
  SourceStream stream(o, sink);
  stream.start();
  ASSERT_TRUE(sink.waitFor([](const Record& r) { return !r.snapshots.empty(); }));

  proxy.cutAll();
  ASSERT_TRUE(sink.waitFor([](const Record& r) { return !r.downs.empty(); }, 5s));
  for (int i = 0; i < 20; ++i) {  // 40 changes through a history of 16.
    Node churn(d.epmdPort(), "churn" + std::to_string(i));
  }
  ASSERT_TRUE(sink.waitFor([](const Record& r) { return r.snapshots.size() >= 2; }));
  const Record r = sink.record();
  EXPECT_EQ(r.downs.size(), 1u) << "the list again is no outage";
  EXPECT_EQ(r.identities.size(), 2u);
  ASSERT_EQ(r.snapshots[1].size(), 1u);
  EXPECT_EQ(r.snapshots[1][0].name(), "stays");
  EXPECT_GE(r.snapshot_revisions[1], r.snapshot_revisions[0] + 40);
  EXPECT_TRUE(r.events.empty()) << "the churn is in no event: it left the history";
  stopAndCheck(stream, sink);
}

TEST(SourceStream, AWrongTokenIsRefused) {
  Daemon d;
  ASSERT_TRUE(d.start()) << d.stderrText();
  RecordingSink sink;
  SourceStream stream(quick(d.grpcAddress(), "not-a-token"), sink);
  stream.start();
  ASSERT_TRUE(sink.waitFor([](const Record& r) { return !r.downs.empty(); }));
  const Record r = sink.record();
  EXPECT_TRUE(r.downs[0].second);
  EXPECT_EQ(r.downs[0].first.rfind("UNAUTHENTICATED: ", 0), 0u) << r.downs[0].first;
  EXPECT_NE(r.downs[0].first.find("unknown bearer token"), std::string::npos) << r.downs[0].first;
  EXPECT_TRUE(r.identities.empty());
  stopAndCheck(stream, sink);
}

TEST(SourceStream, AStoppedSourceIsDownAfterTheSilenceTimeoutAndResumedAfterSigcont) {
  Daemon d;
  ASSERT_TRUE(d.start()) << d.stderrText();
  RecordingSink sink;
  auto o = quick(d.grpcAddress());
  o.progress_interval = 300ms;
  o.silence_timeout = 1500ms;
  SourceStream stream(o, sink);
  stream.start();
  ASSERT_TRUE(sink.waitFor([](const Record& r) { return !r.snapshots.empty(); }));

  const auto stopped = Clock::now();
  d.signal(SIGSTOP);
  ASSERT_TRUE(sink.waitFor([](const Record& r) { return !r.downs.empty(); }, 5s));
  Record r = sink.record();
  EXPECT_LT(r.down_times[0] - stopped, o.silence_timeout + 1s) << r.downs[0].first;
  EXPECT_FALSE(r.downs[0].second);

  // A node registers while the daemon is stopped (the kernel queues its connection): its
  // event must come through the resumed stream.
  const int fd = connectTo("127.0.0.1", d.epmdPort());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(sendAll(fd, frame(alive2Body("woke", 9600))));
  d.signal(SIGCONT);
  EXPECT_EQ(readN(fd, 2, 5s), bytes({118, 0}));
  ASSERT_TRUE(sink.waitFor(
      [](const Record& r) { return r.count(v1::NodeEvent::REGISTERED, "woke") == 1; }, 10s));
  r = sink.record();
  EXPECT_EQ(r.snapshots.size(), 1u) << "resumed after SIGCONT, not listed again";
  EXPECT_GE(r.identities.size(), 2u);
  EXPECT_EQ(r.calls.back() == "down", false);
  close(fd);
  stopAndCheck(stream, sink);
}

TEST(SourceStream, EvictThroughTheStreamKeepsItsPreconditions) {
  Daemon d;
  ASSERT_TRUE(d.start()) << d.stderrText();
  Node victim(d.epmdPort(), "victim");
  RecordingSink sink;
  SourceStream stream(quick(d.grpcAddress()), sink);
  stream.start();
  ASSERT_TRUE(sink.waitFor([](const Record& r) { return !r.snapshots.empty(); }));
  const Record r = sink.record();
  ASSERT_EQ(r.snapshots[0].size(), 1u);
  const uint64_t id = r.snapshots[0][0].registration_id();

  v1::EvictNodeRequest wrong;
  wrong.set_name("victim");
  wrong.set_registration_id(id + 1000);
  wrong.set_reason("test");
  v1::EvictNodeResponse response;
  const grpc::Status refused = stream.evict(wrong, &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << refused.error_message();

  v1::EvictNodeRequest right = wrong;
  right.set_registration_id(id);
  const grpc::Status ok = stream.evict(right, &response);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_EQ(response.node().name(), "victim");
  EXPECT_EQ(response.node().registration_id(), id);
  ASSERT_TRUE(sink.waitFor(
      [](const Record& r) { return r.count(v1::NodeEvent::UNREGISTERED, "victim") == 1; }));
  EXPECT_EQ(sink.record().events.back().reason(), v1::EVICTED);

  // Gone now: the source's own answer comes back.
  EXPECT_EQ(stream.evict(right, &response).error_code(), grpc::StatusCode::NOT_FOUND);
  // A reader token may follow but not evict.
  RecordingSink reader_sink;
  SourceStream reader(quick(d.grpcAddress(), kReader), reader_sink);
  Node other(d.epmdPort(), "other");
  right.set_name("other");
  right.clear_registration_id();
  EXPECT_EQ(reader.evict(right, &response).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  stopAndCheck(stream, sink);
}

TEST(SourceStream, EvictingAtAnUnreachableSourceIsUnavailable) {
  const uint16_t nobody = freePort();
  RecordingSink sink;
  SourceStream stream(quick("127.0.0.1:" + std::to_string(nobody)), sink);
  v1::EvictNodeRequest request;
  request.set_name("x");
  v1::EvictNodeResponse response;
  const grpc::Status s = stream.evict(request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(s.error_message(),
            "connect 127.0.0.1:" + std::to_string(nobody) + ": connection refused");
}

TEST(SourceStream, StopDuringTheBackoffIsQuickAndSafeTwice) {
  const uint16_t nobody = freePort();
  RecordingSink sink;
  auto o = quick("127.0.0.1:" + std::to_string(nobody));
  o.backoff_min = 30s;
  o.backoff_max = 30s;
  SourceStream stream(o, sink);
  stream.start();
  ASSERT_TRUE(sink.waitFor([](const Record& r) { return !r.downs.empty(); }));
  const Record r = sink.record();
  EXPECT_EQ(r.downs[0].first,
            "connect 127.0.0.1:" + std::to_string(nobody) + ": connection refused");
  EXPECT_FALSE(r.downs[0].second);
  stopAndCheck(stream, sink, 200ms);
  stream.stop();  // Again: nothing happens.
  EXPECT_EQ(sink.record().downs.size(), 1u);
}

TEST(SourceStream, StopMidReadIsQuick) {
  Daemon d;
  ASSERT_TRUE(d.start()) << d.stderrText();
  RecordingSink sink;
  auto o = quick(d.grpcAddress());
  o.progress_interval = 60s;  // Nothing will come: the stream sits in a read.
  o.silence_timeout = 120s;
  SourceStream stream(o, sink);
  stream.start();
  ASSERT_TRUE(sink.waitFor([](const Record& r) { return !r.snapshots.empty(); }));
  stopAndCheck(stream, sink, 200ms);
  EXPECT_TRUE(sink.record().downs.empty()) << "a stop is no outage";
}

TEST(SourceStream, StopWhileTheSourceDoesNotAnswerIsQuick) {
  Daemon d;
  ASSERT_TRUE(d.start()) << d.stderrText();
  d.signal(SIGSTOP);  // Connections are accepted by the kernel; nothing answers.
  RecordingSink sink;
  auto o = quick(d.grpcAddress());
  o.rpc_timeout = 30s;
  o.keepalive_timeout = 30s;
  SourceStream stream(o, sink);
  stream.start();
  // The stream's TCP connection is up (the kernel accepted it): its ListClusters waits for
  // an answer that never comes.
  ASSERT_TRUE(eventually([&] { return established(d.grpcPort()); }, 5s));
  stopAndCheck(stream, sink, 200ms);
  EXPECT_TRUE(sink.record().downs.empty());
  EXPECT_TRUE(sink.record().identities.empty());
  d.signal(SIGCONT);
}

TEST(SourceStream, StopBeforeStartAndDestroyWithoutStop) {
  RecordingSink sink;
  {
    SourceStream never(quick("127.0.0.1:1"), sink);
    never.stop();
    never.start();  // After stop(): does nothing.
  }
  {
    SourceStream running(quick("127.0.0.1:" + std::to_string(freePort())), sink);
    running.start();
    ASSERT_TRUE(sink.waitFor([](const Record& r) { return !r.downs.empty(); }));
  }  // The destructor stops it.
  sink.stopped();
  EXPECT_TRUE(sink.record().violations.empty());
}

TEST(SourceStream, ABadAddressIsSaidPlainly) {
  RecordingSink sink;
  SourceStream stream(quick("no-port-here"), sink);
  stream.start();
  ASSERT_TRUE(sink.waitFor([](const Record& r) { return !r.downs.empty(); }));
  EXPECT_EQ(sink.record().downs[0].first,
            "bad source address \"no-port-here\": HOST:PORT expected");
  stopAndCheck(stream, sink);
}

// ---- TLS: certificates made with openssl for the test.

class Pki {
 public:
  Pki() : dir_(tempBase() + "-pki") {
    runCommand({"mkdir", "-p", dir_});
    ssl({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=epmdx stream test CA", "-keyout", path("ca.key"), "-out", path("ca.pem")});
    std::ofstream(path("san.cnf")) << "subjectAltName=DNS:source.fleet.test\n";
    for (const std::string who : {"server", "client"}) {
      ssl({"req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + who, "-keyout",
           path(who + ".key"), "-out", path(who + ".csr")});
      std::vector<std::string> sign{"x509",
                                    "-req",
                                    "-in",
                                    path(who + ".csr"),
                                    "-CA",
                                    path("ca.pem"),
                                    "-CAkey",
                                    path("ca.key"),
                                    "-CAcreateserial",
                                    "-days",
                                    "1",
                                    "-out",
                                    path(who + ".pem")};
      if (who == "server") {
        sign.insert(sign.end(), {"-extfile", path("san.cnf")});
      }
      ssl(sign);
    }
  }
  ~Pki() { runCommand({"rm", "-rf", dir_}); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  bool ok() const { return ok_; }

 private:
  void ssl(std::vector<std::string> args) {
    args.insert(args.begin(), "openssl");
    ok_ = ok_ && runCommand(args).first == 0;
  }
  std::string dir_;
  bool ok_ = true;
};

TEST(SourceStream, TlsWithACaAndAServerName) {
  Pki pki;
  ASSERT_TRUE(pki.ok());
  Daemon d(
      {"--grpc-tls-cert=" + pki.path("server.pem"), "--grpc-tls-key=" + pki.path("server.key")});
  ASSERT_TRUE(d.start()) << d.stderrText();
  Node n(d.epmdPort(), "secure");

  auto o = quick(d.grpcAddress());
  o.tls.enabled = true;
  o.tls.ca_file = pki.path("ca.pem");
  o.tls.server_name = "source.fleet.test";  // The certificate does not name 127.0.0.1.
  RecordingSink sink;
  SourceStream stream(o, sink);
  stream.start();
  ASSERT_TRUE(sink.waitFor([](const Record& r) { return !r.snapshots.empty(); }))
      << (sink.record().downs.empty() ? "" : sink.record().downs.back().first);
  EXPECT_TRUE(Record::has(sink.record().snapshots[0], "secure"));
  stopAndCheck(stream, sink);

  // Without the server name the certificate does not match the address: refused, said so.
  o.tls.server_name.clear();
  RecordingSink wrong_name;
  SourceStream mismatch(o, wrong_name);
  mismatch.start();
  ASSERT_TRUE(wrong_name.waitFor([](const Record& r) { return !r.downs.empty(); }));
  EXPECT_TRUE(wrong_name.record().downs[0].second) << wrong_name.record().downs[0].first;
  EXPECT_EQ(wrong_name.record().downs[0].first,
            "connect " + d.grpcAddress() +
                ": TLS handshake failed: Peer name 127.0.0.1 is not in peer certificate");
  stopAndCheck(mismatch, wrong_name);

  // A CA file that cannot be read: said, naming the file.
  o.tls.ca_file = pki.path("missing.pem");
  RecordingSink no_ca;
  SourceStream missing(o, no_ca);
  missing.start();
  ASSERT_TRUE(no_ca.waitFor([](const Record& r) { return !r.downs.empty(); }));
  EXPECT_NE(no_ca.record().downs[0].first.find("missing.pem"), std::string::npos);
  stopAndCheck(missing, no_ca);
}

TEST(SourceStream, MutualTls) {
  Pki pki;
  ASSERT_TRUE(pki.ok());
  Daemon d({"--grpc-tls-cert=" + pki.path("server.pem"), "--grpc-tls-key=" + pki.path("server.key"),
            "--grpc-tls-client-ca=" + pki.path("ca.pem")});
  ASSERT_TRUE(d.start()) << d.stderrText();

  auto o = quick(d.grpcAddress());
  o.tls.enabled = true;
  o.tls.ca_file = pki.path("ca.pem");
  o.tls.server_name = "source.fleet.test";
  o.tls.cert_file = pki.path("client.pem");
  o.tls.key_file = pki.path("client.key");
  RecordingSink sink;
  SourceStream stream(o, sink);
  stream.start();
  ASSERT_TRUE(sink.waitFor([](const Record& r) { return !r.snapshots.empty(); }))
      << (sink.record().downs.empty() ? "" : sink.record().downs.back().first);
  stopAndCheck(stream, sink);

  // Without a client certificate the source refuses the relay.
  o.tls.cert_file.clear();
  o.tls.key_file.clear();
  RecordingSink anonymous;
  SourceStream without(o, anonymous);
  without.start();
  ASSERT_TRUE(anonymous.waitFor([](const Record& r) { return !r.downs.empty(); }));
  const Record r = anonymous.record();
  EXPECT_TRUE(r.identities.empty());
  EXPECT_TRUE(r.downs[0].second) << r.downs[0].first;
  EXPECT_NE(r.downs[0].first.find("client certificate"), std::string::npos) << r.downs[0].first;
  stopAndCheck(without, anonymous);
}

}  // namespace
}  // namespace epmdx::testing
