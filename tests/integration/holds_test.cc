// Holds with a real OTP 25 node: an eviction with a hold keeps the name reserved, so the
// evicted node's own re-registration (OTP retries every 2 s or so after its epmd connection
// closes) gets OTP's duplicate-name refusal until the hold ends, then it registers again by
// itself; lifting the hold lets it back at once. Driven through epmdxctl (gRPC) and REST,
// with the watch events and the audit file checked.

#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "tests/support/net.h"
#include "tests/support/process.h"
#include "tests/support/running_app.h"

namespace epmdx::testing {
namespace {

using namespace std::chrono_literals;
using registry::EventType;
using registry::RegisterError;

std::vector<std::string> linesOf(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    out.push_back(l);
  }
  return out;
}

class HoldsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = "/tmp/epmdx-holds-" + std::to_string(getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ + "/tokens") << "admintok read evict name=ops\n";
    auto o = RunningApp::testOptions();
    o.tokens_file = dir_ + "/tokens";
    o.audit_file = dir_ + "/audit.jsonl";
    o.packet_timeout = 60;
    app_ = std::make_unique<RunningApp>(o);
  }
  void TearDown() override {
    node_.reset();
    app_.reset();
    std::filesystem::remove_all(dir_);
  }

  registry::Registry& reg() { return app_->app().registry(); }

  void startNode(const std::string& name) {
    node_ = std::make_unique<Process>(
        std::vector<std::string>{"erl", "-sname", name, "-setcookie", "epmdxtest", "-noshell",
                                 "-start_epmd", "false", "-eval", "timer:sleep(120000), halt()."},
        std::map<std::string, std::string>{{"ERL_EPMD_PORT", std::to_string(app_->port())},
                                           {"HOME", "/tmp"}});
    ASSERT_TRUE(eventually([&] { return reg().find(name) != nullptr; }))
        << name << " did not register: " << node_->stderrText();
  }

  std::pair<int, std::string> ctl(std::vector<std::string> args) {
    std::vector<std::string> argv{epmdxctlBinary(),
                                  "--server=127.0.0.1:" + std::to_string(app_->app().grpcPort()),
                                  "--token=admintok"};
    argv.insert(argv.end(), args.begin(), args.end());
    return runCommand(argv);
  }

  uint64_t heldRefusals() {
    return reg().stats().register_errors[static_cast<size_t>(RegisterError::NameHeld)];
  }

  /// Every event from `from` on (the history is large enough for a test).
  std::vector<registry::Event> eventsFrom(registry::Revision from) {
    std::vector<registry::Event> out;
    auto w = reg().watch(from, {});
    EXPECT_TRUE(w.ok());
    if (w.ok()) {
      EXPECT_TRUE(w.value()->poll(1000, out).ok());
    }
    return out;
  }

  std::string dir_;
  std::unique_ptr<RunningApp> app_;
  std::unique_ptr<Process> node_;
};

TEST_F(HoldsTest, TheEvictedNodeIsRefusedDuringTheHoldThenRegistersByItself) {
  const std::string name = "held" + std::to_string(app_->port());
  startNode(name);
  const auto first = reg().find(name);
  const registry::Revision start = reg().revision();

  // The gRPC watch stream (epmdxctl watch, from the revision before the eviction) sees the
  // hold's events.
  Process watch({epmdxctlBinary(), "--server=127.0.0.1:" + std::to_string(app_->app().grpcPort()),
                 "--token=admintok", "watch", "--after=" + std::to_string(start)});

  // 6 s: long enough for OTP's re-registration (about 2 s after the close) to be refused at
  // least once, which is all a 10 s hold would show, in less time.
  const auto evicted_at = std::chrono::steady_clock::now();
  auto [code, out] = ctl({"evict", name, "--hold=6s", "--reason=rolling restart"});
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("held for 6s"), std::string::npos) << out;

  auto [hcode, holds] = ctl({"holds"});
  EXPECT_EQ(hcode, 0);
  EXPECT_NE(holds.find(name), std::string::npos) << holds;
  EXPECT_NE(holds.find("ops@"), std::string::npos) << holds;
  EXPECT_NE(holds.find("rolling restart"), std::string::npos) << holds;

  // The node's own re-registration is refused with OTP's reply...
  ASSERT_TRUE(eventually([&] { return heldRefusals() >= 1; }, 6s))
      << "the node did not try again during the hold";
  EXPECT_EQ(reg().find(name), nullptr);
  EXPECT_TRUE(node_->running()) << "a refused re-registration must not kill the node";
  // A held name is epmdx's own refusal: its connection is closed once answered, so the
  // node's retries do not pile up open sockets (one per retry over a 20 s hold).
  EXPECT_TRUE(
      eventually([&] { return app_->app().epmdMetrics().connections_open.load() == 0; }, 1500ms))
      << "refused connections still open: " << app_->app().epmdMetrics().connections_open.load();

  // ...and once the hold ends it registers again by itself, with a new registration.
  ASSERT_TRUE(eventually([&] { return reg().find(name) != nullptr; }, 20s)) << node_->stderrText();
  const auto second = reg().find(name);
  EXPECT_NE(second->id, first->id);
  EXPECT_GE(std::chrono::steady_clock::now() - evicted_at, 6s);
  std::cout << "hold: re-registered "
            << std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - evicted_at)
                   .count()
            << " ms after the eviction with a 6 s hold; refusals during the hold: "
            << heldRefusals() << "\n";

  // The history: UNREGISTERED(evicted), HELD, HOLD_EXPIRED, REGISTERED, in that order.
  std::vector<EventType> types;
  for (const auto& e : eventsFrom(start + 1)) {
    if (e.registration->node.name == name) {
      types.push_back(e.type);
    }
  }
  EXPECT_EQ(types, (std::vector<EventType>{EventType::Unregistered, EventType::Held,
                                           EventType::HoldExpired, EventType::Registered}));

  ASSERT_TRUE(eventually([&] {
    return watch.stdoutText().find(" registered " + name) != std::string::npos;
  })) << watch.stdoutText();
  const std::string seen = watch.stdoutText();
  const auto held_at = seen.find(" held " + name + " id=" + std::to_string(first->id) + " until=");
  const auto expired_at = seen.find(" hold_expired " + name);
  EXPECT_NE(held_at, std::string::npos) << seen;
  EXPECT_NE(seen.find("by=ops@"), std::string::npos) << seen;
  EXPECT_NE(expired_at, std::string::npos) << seen;
  EXPECT_LT(held_at, expired_at) << seen;

  // The audit file: the eviction, the hold and its expiry, one JSON line each.
  std::vector<std::string> audit;
  ASSERT_TRUE(eventually([&] {
    audit = linesOf(readFile(dir_ + "/audit.jsonl"));
    return audit.size() >= 3;
  }));
  ASSERT_EQ(audit.size(), 3u) << readFile(dir_ + "/audit.jsonl");
  EXPECT_NE(audit[0].find("\"action\":\"evict\""), std::string::npos) << audit[0];
  EXPECT_NE(audit[0].find("\"actor\":\"ops@"), std::string::npos) << audit[0];
  EXPECT_NE(audit[0].find("\"reason\":\"rolling restart\""), std::string::npos) << audit[0];
  EXPECT_NE(audit[0].find("\"name\":\"" + name + "\""), std::string::npos) << audit[0];
  EXPECT_NE(audit[0].find("\"registrationId\":\"" + std::to_string(first->id) + "\""),
            std::string::npos)
      << audit[0];
  EXPECT_NE(audit[1].find("\"action\":\"hold\""), std::string::npos) << audit[1];
  EXPECT_NE(audit[1].find("\"expiresAt\""), std::string::npos) << audit[1];
  EXPECT_NE(audit[2].find("\"action\":\"expire\""), std::string::npos) << audit[2];

  auto [lcode, lifted] = ctl({"lift", name});
  EXPECT_EQ(lcode, 3) << "nothing to lift once expired: " << lifted;
}

// The same with raw sockets: ALIVE2 for a held name gets OTP's error reply and then the
// server closes the connection; the open-connections gauge is back to one per registered
// node. (A duplicate name keeps the connection open, as OTP does: differential_test.)
TEST_F(HoldsTest, AnAlive2RefusedForAHeldNameIsClosedAfterTheReply) {
  const int other = connectTo("127.0.0.1", app_->port());
  ASSERT_GE(other, 0);
  ASSERT_TRUE(sendAll(other, frame(alive2Body("rawother", 5001))));
  ASSERT_EQ(readN(other, 6, 2000ms).size(), 6u);
  const int first = connectTo("127.0.0.1", app_->port());
  ASSERT_TRUE(sendAll(first, frame(alive2Body("rawheld", 5002))));
  ASSERT_EQ(readN(first, 6, 2000ms).size(), 6u);
  ASSERT_TRUE(reg().evict({.name = "rawheld", .actor = "test", .hold_for = 60s}).ok());
  EXPECT_TRUE(readUntilClose(first, 2000ms).closed) << "the evicted registration's connection";
  close(first);

  for (int attempt = 0; attempt < 3; ++attempt) {  // Every retry: refused, then closed.
    const int retry = connectTo("127.0.0.1", app_->port());
    ASSERT_TRUE(sendAll(retry, frame(alive2Body("rawheld", 5002))));
    const Outcome o = readUntilClose(retry, 2000ms);
    close(retry);
    ASSERT_EQ(o.bytes.size(), 6u) << "ALIVE2_X_RESP expected";
    EXPECT_EQ(static_cast<uint8_t>(o.bytes[0]), 118);
    EXPECT_NE(o.bytes[1], 0) << "refused";
    EXPECT_TRUE(o.closed) << "attempt " << attempt << ": the server kept a refused connection";
  }
  EXPECT_EQ(heldRefusals(), 3u);
  EXPECT_TRUE(eventually([&] {
    return app_->app().epmdMetrics().connections_open.load() == static_cast<int64_t>(reg().size());
  })) << "open "
      << app_->app().epmdMetrics().connections_open.load() << ", registered " << reg().size();
  EXPECT_EQ(reg().size(), 1u);
  close(other);
}

// The node limit (--max-nodes) is epmdx's own refusal too: answered, then closed.
TEST(NodeLimit, AnAlive2RefusedForTheNodeLimitIsClosedAfterTheReply) {
  auto o = RunningApp::testOptions();
  o.max_nodes = 1;
  RunningApp app(o);
  const int first = connectTo("127.0.0.1", app.port());
  ASSERT_TRUE(sendAll(first, frame(alive2Body("limitone", 5003))));
  ASSERT_EQ(readN(first, 6, 2000ms).size(), 6u);
  const int second = connectTo("127.0.0.1", app.port());
  ASSERT_TRUE(sendAll(second, frame(alive2Body("limittwo", 5004))));
  const Outcome o2 = readUntilClose(second, 2000ms);
  close(second);
  ASSERT_EQ(o2.bytes.size(), 6u);
  EXPECT_NE(o2.bytes[1], 0) << "refused";
  EXPECT_TRUE(o2.closed) << "the server kept a connection refused for the node limit";
  EXPECT_TRUE(eventually([&] { return app.app().epmdMetrics().connections_open.load() == 1; }));
  close(first);
}

TEST_F(HoldsTest, LiftingTheHoldEarlyLetsTheNodeBackAtOnce) {
  const std::string name = "lifted" + std::to_string(app_->port());
  startNode(name);
  const auto first = reg().find(name);
  httplib::Client http("127.0.0.1", app_->app().httpPort());
  const httplib::Headers auth{{"Authorization", "Bearer admintok"}};

  auto evicted = http.Delete("/v1/nodes/" + name + "?hold_seconds=600", auth,
                             R"({"reason":"investigating"})", "application/json");
  ASSERT_TRUE(evicted);
  ASSERT_EQ(evicted->status, 200) << evicted->body;
  EXPECT_NE(evicted->body.find("\"hold\":{"), std::string::npos) << evicted->body;

  auto listed = http.Get("/v1/holds", auth);
  ASSERT_TRUE(listed);
  EXPECT_EQ(listed->status, 200);
  EXPECT_NE(listed->body.find("\"name\":\"" + name + "\""), std::string::npos) << listed->body;

  ASSERT_TRUE(eventually([&] { return heldRefusals() >= 1; }, 6s));
  const auto lifted_at = std::chrono::steady_clock::now();
  auto lifted = http.Delete("/v1/holds/" + name + "?cluster=default&reason=done", auth);
  ASSERT_TRUE(lifted);
  ASSERT_EQ(lifted->status, 200) << lifted->body;
  EXPECT_NE(lifted->body.find("\"registrationId\":\"" + std::to_string(first->id) + "\""),
            std::string::npos)
      << lifted->body;
  // OTP retries every 2 s or so: back well within a few of those, 600 s before the hold's end.
  ASSERT_TRUE(eventually([&] { return reg().find(name) != nullptr; }, 10s));
  std::cout << "lift: the node registered again "
            << std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - lifted_at)
                   .count()
            << " ms after the lift\n";
  auto again = http.Delete("/v1/holds/" + name, auth);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 404) << again->body;

  std::vector<std::string> audit;
  ASSERT_TRUE(eventually([&] {
    audit = linesOf(readFile(dir_ + "/audit.jsonl"));
    return audit.size() >= 3;
  }));
  EXPECT_NE(audit[2].find("\"action\":\"lift\""), std::string::npos) << audit[2];
  EXPECT_NE(audit[2].find("\"reason\":\"done\""), std::string::npos) << audit[2];

  auto metrics = http.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("epmdx_holds_total{event=\"lifted\"} 1"), std::string::npos);
  EXPECT_NE(metrics->body.find("epmdx_registration_errors_total{reason=\"name_held\"}"),
            std::string::npos);
}

}  // namespace
}  // namespace epmdx::testing
