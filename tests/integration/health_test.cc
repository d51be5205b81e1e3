// Node health with a real OTP 25 node (--probe-interval): ALIVE after the first probe, a
// SIGSTOPped VM UNRESPONSIVE within two probe intervals with a HEALTH_CHANGED event, ALIVE
// again after SIGCONT; the same in REST and the metrics.

#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <unistd.h>

#include <sys/resource.h>

#include <functional>
#include <thread>

#include "tests/support/net.h"
#include "tests/support/process.h"
#include "tests/support/running_app.h"

namespace epmdx::testing {
namespace {

using namespace std::chrono_literals;
using registry::EventType;
using registry::HealthStatus;

class HealthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto o = RunningApp::testOptions();
    o.probe_interval_s = 2;  // Probe timeout 1 s: a stop is seen within 3 s at worst.
    o.packet_timeout = 60;
    app_ = std::make_unique<RunningApp>(o);
    watch_ = std::move(app_->app().registry().watch(0, {}).value());
  }
  void TearDown() override {
    if (node_) {
      node_->signal(SIGCONT);
    }
    node_.reset();
    watch_.reset();
    app_.reset();
  }

  registry::Registry& reg() { return app_->app().registry(); }

  /// Waits for the next HEALTH_CHANGED event of `name` to `status`; returns it.
  std::optional<registry::Event> waitHealth(const std::string& name, HealthStatus status,
                                            std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::vector<registry::Event> events;
    while (std::chrono::steady_clock::now() < deadline) {
      events.clear();
      EXPECT_TRUE(watch_->poll(100, events).ok());
      for (const auto& e : events) {
        if (e.type == EventType::HealthChanged && e.registration->node.name == name) {
          seen_.push_back(e);
          if (e.registration->health().status == status) {
            return e;
          }
        }
      }
      std::this_thread::sleep_for(10ms);  // Polling with a deadline.
    }
    return std::nullopt;
  }

  std::unique_ptr<RunningApp> app_;
  registry::WatchPtr watch_;
  std::unique_ptr<Process> node_;
  std::vector<registry::Event> seen_;
};

TEST_F(HealthTest, AStoppedNodeTurnsUnresponsiveWithinTwoIntervalsAndAliveAfterSigcont) {
  const std::string name = "health" + std::to_string(app_->port());
  node_ = std::make_unique<Process>(
      std::vector<std::string>{"erl", "-sname", name, "-setcookie", "epmdxtest", "-noshell",
                               "-start_epmd", "false", "-eval", "timer:sleep(120000), halt()."},
      std::map<std::string, std::string>{{"ERL_EPMD_PORT", std::to_string(app_->port())},
                                         {"HOME", "/tmp"}});
  const auto alive = waitHealth(name, HealthStatus::Alive, 20s);
  ASSERT_TRUE(alive) << node_->stderrText();
  const auto id = alive->registration->id;
  EXPECT_EQ(alive->registration->health().consecutive_failures, 0u);
  EXPECT_GT(alive->registration->health().last_probe_ns, 0);

  // A few good probes later, stop the VM.
  const auto stopped_at = std::chrono::steady_clock::now();
  node_->signal(SIGSTOP);
  const auto down = waitHealth(name, HealthStatus::Unresponsive, 15s);
  ASSERT_TRUE(down);
  const auto detected = std::chrono::steady_clock::now() - stopped_at;
  EXPECT_LT(detected, 4s) << "two probe intervals";
  EXPECT_EQ(down->registration->id, id);
  EXPECT_GE(down->registration->health().consecutive_failures, 1u);
  EXPECT_NE(down->registration->health().last_error.find("no answer"), std::string::npos)
      << down->registration->health().last_error;
  EXPECT_GT(down->revision, alive->revision);

  // Both APIs say so, and the SSE watch stream has the events in revision order.
  httplib::Client http("127.0.0.1", app_->app().httpPort());
  std::string stream;
  http.set_read_timeout(10s);
  (void)http.Get("/v1/watch?since=0", [&](const char* data, size_t n) {
    stream.append(data, n);
    return stream.find("\"UNRESPONSIVE\"") == std::string::npos;  // Enough: stop reading.
  });
  const auto alive_frame = stream.find("\"type\":\"HEALTH_CHANGED\"");
  EXPECT_NE(alive_frame, std::string::npos) << stream;
  EXPECT_NE(stream.find("id: " + std::to_string(down->revision) + "\n"), std::string::npos)
      << stream;
  EXPECT_LT(stream.find("\"status\":\"ALIVE\""), stream.find("\"status\":\"UNRESPONSIVE\""))
      << stream;
  auto got = http.Get("/v1/nodes/" + name);
  ASSERT_TRUE(got);
  EXPECT_NE(got->body.find("\"status\":\"UNRESPONSIVE\""), std::string::npos) << got->body;
  EXPECT_NE(got->body.find("\"lastError\":\"timeout: connected, no answer"), std::string::npos)
      << got->body;
  auto metrics = http.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("epmdx_nodes_by_health{health=\"unresponsive\"} 1"),
            std::string::npos);
  EXPECT_NE(metrics->body.find("epmdx_health_changes_total{health=\"unresponsive\"} 1"),
            std::string::npos);

  const auto resumed_at = std::chrono::steady_clock::now();
  node_->signal(SIGCONT);
  const auto back = waitHealth(name, HealthStatus::Alive, 10s);
  ASSERT_TRUE(back);
  const auto recovered = std::chrono::steady_clock::now() - resumed_at;
  EXPECT_LT(recovered, 4s);
  EXPECT_EQ(back->registration->health().consecutive_failures, 0u);
  std::cout << "health: probe interval 2 s, timeout 1 s: unresponsive "
            << std::chrono::duration_cast<std::chrono::milliseconds>(detected).count()
            << " ms after SIGSTOP, alive "
            << std::chrono::duration_cast<std::chrono::milliseconds>(recovered).count()
            << " ms after SIGCONT\n";
  // One event per change, in revision order: ALIVE, UNRESPONSIVE, ALIVE.
  ASSERT_EQ(seen_.size(), 3u);
  EXPECT_LT(seen_[0].revision, seen_[1].revision);
  EXPECT_LT(seen_[1].revision, seen_[2].revision);
  EXPECT_EQ(reg().find(name)->health().status, HealthStatus::Alive);
}

TEST_F(HealthTest, ANodeWhosePortNobodyListensOnIsUnresponsiveWithTheReason) {
  // A registration made by hand for a port with no listener: "connection refused".
  const uint16_t dead_port = freePort();
  const int fd = connectTo("127.0.0.1", app_->port());
  sendAll(fd, frame(alive2Body("ghost", dead_port, 6, 5, "")));
  ASSERT_EQ(readN(fd, 6, 2000ms).size(), 6u);
  const auto down = waitHealth("ghost", HealthStatus::Unresponsive, 5s);
  ASSERT_TRUE(down);
  EXPECT_NE(down->registration->health().last_error.find("refused"), std::string::npos)
      << down->registration->health().last_error;
  close(fd);
}

TEST(HealthCost, AThousandRegistrationsAreProbedEveryInterval) {
  // 1,000 registrations (made here, over real sockets) all pointing at one live OTP node's
  // distribution port, probed every second: how long until all are ALIVE, and what the
  // daemon (this process: epmd thread, prober, registry) spends per second on it.
  auto o = RunningApp::testOptions();
  o.probe_interval_s = 1;
  o.packet_timeout = 60;
  RunningApp app(o);
  const std::string name = "target" + std::to_string(app.port());
  Process node({"erl", "-sname", name, "-setcookie", "epmdxtest", "-noshell", "-start_epmd",
                "false", "-eval", "timer:sleep(120000)."},
               {{"ERL_EPMD_PORT", std::to_string(app.port())}, {"HOME", "/tmp"}});
  registry::RegistrationPtr target;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!(target = app.app().registry().find(name)) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);  // Polling with a deadline.
  }
  ASSERT_TRUE(target) << node.stderrText();
  constexpr int kCount = 1000;
  std::vector<int> fds;
  const auto registered_at = std::chrono::steady_clock::now();
  for (int i = 0; i < kCount; ++i) {
    const int fd = connectTo("127.0.0.1", app.port());
    ASSERT_GE(fd, 0);
    sendAll(fd, frame(alive2Body("n" + std::to_string(i), target->node.port, 6, 5, "")));
    ASSERT_EQ(readN(fd, 6, 2000ms).size(), 6u);
    fds.push_back(fd);
  }
  auto aliveCount = [&] {
    return app.app().registry().stats().nodes_by_health[static_cast<size_t>(HealthStatus::Alive)];
  };
  const auto all_deadline = std::chrono::steady_clock::now() + 30s;
  while (aliveCount() < kCount + 1 && std::chrono::steady_clock::now() < all_deadline) {
    std::this_thread::sleep_for(20ms);  // Polling with a deadline.
  }
  ASSERT_EQ(aliveCount(), static_cast<size_t>(kCount + 1));
  const auto all_alive = std::chrono::steady_clock::now() - registered_at;

  // Steady state: CPU of the whole daemon over 5 s of probing.
  auto cpu = [] {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return std::chrono::microseconds(u.ru_utime.tv_sec * 1000000 + u.ru_utime.tv_usec +
                                     u.ru_stime.tv_sec * 1000000 + u.ru_stime.tv_usec);
  };
  const int64_t probe_before = app.app().registry().find("n0")->health().last_probe_ns;
  const auto cpu_before = cpu();
  const auto wall_before = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(5s);  // The measurement window, not synchronisation.
  const auto cpu_used = cpu() - cpu_before;
  const auto wall = std::chrono::steady_clock::now() - wall_before;
  EXPECT_GT(app.app().registry().find("n0")->health().last_probe_ns, probe_before);
  EXPECT_EQ(aliveCount(), static_cast<size_t>(kCount + 1)) << "no false alarm under load";
  const double share =
      100.0 * static_cast<double>(cpu_used.count()) /
      static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(wall).count());
  std::cout << "health cost: " << kCount << " registrations, probe interval 1 s: all ALIVE "
            << std::chrono::duration_cast<std::chrono::milliseconds>(all_alive).count()
            << " ms after the first registered; steady state " << share
            << " % of one core for the whole daemon (" << cpu_used.count() / 5 << " us/s)\n";
  for (int fd : fds) {
    close(fd);
  }
}

}  // namespace
}  // namespace epmdx::testing
