// Takeover and automatic eviction with real OTP 25 nodes: a hung node (SIGSTOP)
// no longer blocks its replacement, and a node that stays hung is evicted, with the event,
// the audit line and the metric.

#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>
#include <thread>

#include "tests/support/app_with_nodes.h"
#include "tests/support/net.h"
#include "tests/support/process.h"
#include "tests/support/running_app.h"

namespace epmdx::testing {
namespace {

using namespace std::chrono_literals;
using registry::EventType;
using registry::HealthStatus;
using registry::UnregisterReason;

class TakeoverTest : public AppWithNodes {
 protected:
  void start(bool takeover, int evict_after_s) {
    auto o = RunningApp::testOptions();
    o.probe_interval_s = 1;  // Probe timeout 500 ms.
    o.takeover_unresponsive = takeover;
    o.evict_unresponsive_after_s = evict_after_s;
    startApp(o);
  }
  bool healthIs(const std::string& name, HealthStatus status) {
    auto r = reg().find(name);
    return r && r->health().status == status;
  }
  uint64_t refusals(registry::RegisterError e) {
    return reg().stats().register_errors[static_cast<size_t>(e)];
  }
};

TEST_F(TakeoverTest, AReplacementTakesAHungNodesNameAndTheOldOneCannotTakeItBack) {
  start(true, 0);
  const std::string a = "a" + std::to_string(app_->port());
  Process& old_vm = startNode(a);
  ASSERT_TRUE(eventually([&] { return healthIs(a, HealthStatus::Alive); })) << old_vm.stderrText();
  const auto old_id = reg().find(a)->id;
  const registry::Revision before = reg().revision();

  old_vm.signal(SIGSTOP);
  ASSERT_TRUE(eventually([&] { return healthIs(a, HealthStatus::Unresponsive); }, 10s));

  // The supervisor's new incarnation: same name, registers at once.
  Process& new_vm = startNode(a);
  ASSERT_TRUE(eventually([&] {
    auto r = reg().find(a);
    return r && r->id != old_id;
  })) << new_vm.stderrText();
  const auto new_id = reg().find(a)->id;

  // Reachable from a third node: the pid that answers is the new VM's.
  Process& c = startNode("c" + std::to_string(app_->port()),
                         "[_, H] = string:split(atom_to_list(node()), \"@\"), "
                         "N = list_to_atom(\"" +
                             a +
                             "@\" ++ H), "
                             "io:format(\"ping ~p~n\", [net_adm:ping(N)]), "
                             "io:format(\"pid ~s~n\", [rpc:call(N, os, getpid, [])]), halt().");
  ASSERT_TRUE(c.wait(30s).has_value());
  EXPECT_NE(c.stdoutText().find("ping pong"), std::string::npos)
      << c.stdoutText() << c.stderrText();
  EXPECT_NE(c.stdoutText().find("pid " + std::to_string(new_vm.pid())), std::string::npos)
      << c.stdoutText();

  // The old VM wakes: it notices its closed epmd connection, tries again, and is refused.
  const auto in_use_before = refusals(registry::RegisterError::NameInUse);
  old_vm.signal(SIGCONT);
  ASSERT_TRUE(
      eventually([&] { return refusals(registry::RegisterError::NameInUse) > in_use_before; }, 15s))
      << "the woken VM did not try to register again";
  EXPECT_EQ(reg().find(a)->id, new_id);

  // Events: UNREGISTERED(taken_over, actor takeover) right before the new REGISTERED.
  std::vector<registry::Event> events;
  auto w = reg().watch(before + 1, {});
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(w.value()->poll(1000, events).ok());
  std::vector<std::pair<EventType, UnregisterReason>> mine;
  for (const auto& e : events) {
    if (e.registration->node.name == a && e.type != EventType::HealthChanged) {
      mine.emplace_back(e.type, e.reason);
      if (e.type == EventType::Unregistered) {
        EXPECT_EQ(e.actor(), "takeover");
        EXPECT_NE(e.detail().find("unresponsive for"), std::string::npos) << e.detail();
      }
    }
  }
  ASSERT_GE(mine.size(), 2u);
  EXPECT_EQ(mine[0], std::make_pair(EventType::Unregistered, UnregisterReason::TakenOver));
  EXPECT_EQ(mine[1].first, EventType::Registered);
  std::string audit;
  ASSERT_TRUE(eventually([&] {
    audit = readFile(dir_ + "/audit.jsonl");
    return !audit.empty();
  }));
  EXPECT_NE(audit.find("\"action\":\"takeover\""), std::string::npos) << audit;
  EXPECT_NE(audit.find("\"actor\":\"takeover\""), std::string::npos) << audit;
}

TEST_F(TakeoverTest, WithoutTakeoverTheReplacementIsRefusedAsByOtp) {
  start(false, 0);
  const std::string a = "a" + std::to_string(app_->port());
  Process& old_vm = startNode(a);
  ASSERT_TRUE(eventually([&] { return healthIs(a, HealthStatus::Alive); }));
  old_vm.signal(SIGSTOP);
  ASSERT_TRUE(eventually([&] { return healthIs(a, HealthStatus::Unresponsive); }, 10s));
  Process& new_vm = startNode(a);
  EXPECT_TRUE(new_vm.wait(30s).has_value()) << "OTP gives up on a taken name";
  EXPECT_NE(
      (new_vm.stdoutText() + new_vm.stderrText()).find("seems to be in use by another Erlang node"),
      std::string::npos)
      << new_vm.stdoutText() << new_vm.stderrText();
}

TEST_F(TakeoverTest, ANodeUnresponsiveForTheConfiguredTimeIsEvictedAutomatically) {
  start(false, 2);
  const std::string a = "auto" + std::to_string(app_->port());
  Process& vm = startNode(a);
  ASSERT_TRUE(eventually([&] { return healthIs(a, HealthStatus::Alive); })) << vm.stderrText();
  const auto id = reg().find(a)->id;
  vm.signal(SIGSTOP);
  ASSERT_TRUE(eventually([&] { return healthIs(a, HealthStatus::Unresponsive); }, 10s));
  const auto unresponsive_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually([&] { return reg().find(a) == nullptr; }, 15s));
  const auto after = std::chrono::steady_clock::now() - unresponsive_at;
  EXPECT_GE(after, 1500ms) << "evicted before the configured 2 s (give or take a probe)";
  std::cout << "auto-evict: evicted "
            << std::chrono::duration_cast<std::chrono::milliseconds>(after).count()
            << " ms after the node turned unresponsive (--evict-unresponsive-after=2)\n";

  std::string audit;
  ASSERT_TRUE(eventually([&] {
    audit = readFile(dir_ + "/audit.jsonl");
    return !audit.empty();
  }));
  EXPECT_NE(audit.find("\"action\":\"auto_evict\""), std::string::npos) << audit;
  EXPECT_NE(audit.find("\"actor\":\"auto-evict\""), std::string::npos) << audit;
  EXPECT_NE(audit.find("\"registrationId\":\"" + std::to_string(id) + "\""), std::string::npos)
      << audit;
  httplib::Client http("127.0.0.1", app_->app().httpPort());
  auto metrics = http.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("epmdx_unregistrations_total{reason=\"auto_evicted\"} 1"),
            std::string::npos);
}

}  // namespace
}  // namespace epmdx::testing
